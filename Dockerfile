# incident-syncd in a container: build stage compiles, runtime stage is
# debian:bookworm-slim with only the shared libraries, running as a non-root user.
#   docker build -t incident-sync .
#   buildah bud --format docker -t incident-sync .   (--format docker keeps the HEALTHCHECK)
#   docker run -v incident-data:/data -v ./incident-sync.yaml:/etc/incident-sync/incident-sync.yaml:ro \
#              -e HUMAN_API_TOKEN -p 9464:9464 incident-sync
# The token: HUMAN_API_TOKEN, or the secret file /run/secrets/human_api_token (mode 0400).
# Tested by tests/packaging/docker_test.sh (ctest -L docker).
FROM debian:bookworm-slim AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        g++ cmake ninja-build pkg-config libboost1.81-dev libboost-url1.81-dev libssl-dev \
        rapidjson-dev libsqlitecpp-dev libsqlite3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libxxhash-dev zlib1g-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY lib lib
COPY daemon daemon
COPY schema schema
COPY config config
COPY systemd systemd
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DINCIDENT_SYNC_TESTS=OFF \
    && cmake --build build -j2 --target incident-syncd \
    && strip build/incident-syncd

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        ca-certificates libboost-url1.81.0 libssl3 libsqlite3-0 libspdlog1.10 libfmt9 libyaml-cpp0.7 zlib1g libpq5 \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log \
    && groupadd --system --gid 10001 incident-sync \
    && useradd --system --uid 10001 --gid incident-sync --home-dir /data --shell /usr/sbin/nologin incident-sync \
    && mkdir -p /data /etc/incident-sync && chown incident-sync:incident-sync /data
COPY --from=build /src/build/incident-syncd /usr/bin/incident-syncd
COPY config/docker.yaml /etc/incident-sync/incident-sync.yaml
USER incident-sync
# Prometheus metrics of `run` (metrics.listen in config/docker.yaml).
EXPOSE 9464
VOLUME ["/data"]
WORKDIR /data
STOPSIGNAL SIGTERM
# Healthy when every pair has synced within three intervals (read from the database).
HEALTHCHECK --interval=1m --timeout=10s --start-period=10m --retries=3 \
    CMD ["/usr/bin/incident-syncd", "status", "--check", "--config", "/etc/incident-sync/incident-sync.yaml"]
ENTRYPOINT ["/usr/bin/incident-syncd"]
CMD ["run", "--config", "/etc/incident-sync/incident-sync.yaml"]
