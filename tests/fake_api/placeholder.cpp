namespace fake_api { int placeholder = 0; }
