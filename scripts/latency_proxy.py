#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time each way.

The benchmark puts it between the daemon and PostgreSQL to measure a
database that is a network hop away (another host, a managed service), where
each round trip costs what the link costs, not loopback's few microseconds.
Order is kept; bandwidth is not limited.

    latency_proxy.py --listen-port-file F --target-port P --delay-ms D

It writes the port it listens on to F, and serves until killed.
"""
import argparse
import asyncio
import os
import time


async def pipe(reader, writer, delay_s):
    """Copies reader to writer, each chunk sent delay_s after it arrived."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay_s, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except ConnectionError:
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen-port-file", required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True, help="added each way")
    args = parser.parse_args()
    delay_s = args.delay_ms / 1000.0

    async def serve(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", args.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer, delay_s), pipe(server_reader, client_writer, delay_s))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(args.listen_port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(args.listen_port_file + ".tmp", args.listen_port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
