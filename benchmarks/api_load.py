"""bench_api's open-loop load client: HTTP/1.1 requests at a fixed rate from one asyncio thread, over keep-alive
connections it reuses.

The earlier client (a thread per request in flight, blocking http.client) was late to send by itself: its sending
thread waited for the GIL behind up to 200 workers reading answers, P99 90 ms at 200/s on two cores (session 17,
client and server traces joined), and every request it sent late counted that lateness. One event loop sends on time
and reads the answers as they come; the latency of each request is still taken from when it was planned to go.
"""
from __future__ import annotations

import asyncio
import json
import time

IDLE_S = 4.0  # a connection idle longer is not reused (uvicorn closes keep-alive connections idle for 5 s)
Result = tuple[float, int | str, dict | None, float, float, float]  # latency s, status, answer, late s, planned, read


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes,
                                                                                                            bool]:
    """Send one request, read its answer: (status, body, whether the server closes the connection)."""
    writer.write(request)
    await writer.drain()
    line = await reader.readline()
    if not line:  # the server had closed this keep-alive connection (idle past its timeout)
        raise ConnectionResetError("closed by the server")
    status = int(line.split()[1])
    length, close = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return status, await reader.readexactly(length), close


def _request(port: int, key: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST /api/v1/score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def open_loop(port: int, key: str, bodies: list[dict], rate: float, timeout_s: float) -> list[Result]:
    """POST each body to /api/v1/score, the i-th at start + i / rate (open loop: a slow answer delays no later
    request); per request its latency from when it was planned, status (or the exception's name), answer, how late
    it was sent, and the planned and answer-read times (time.perf_counter, for joining with the server's trace)."""
    requests = [_request(port, key, body) for body in bodies]

    async def main() -> list[Result]:
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []  # and when each was last used

        async def connection(fresh: bool) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], bool]:
            """An idle connection (not one idle for longer than the server keeps it) or a new one; reused?"""
            while idle and not fresh:
                reader, writer, used = idle.pop()
                if time.perf_counter() - used < IDLE_S:
                    return (reader, writer), True
                writer.close()
            return await asyncio.open_connection("127.0.0.1", port), False

        async def one(request: bytes, planned: float) -> Result:
            late = time.perf_counter() - planned
            for attempt in (1, 2):
                conn, reused = await connection(fresh=attempt == 2)
                try:
                    status, data, close = await asyncio.wait_for(_exchange(*conn, request), timeout_s)
                    break
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                    conn[1].close()
                    if attempt == 1 and reused and isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
                        continue  # a keep-alive connection the server closed while idle: the request never arrived
                    read = time.perf_counter()
                    return read - planned, type(exc).__name__, None, late, planned, read
            read = time.perf_counter()
            if close:
                conn[1].close()
            else:
                idle.append((*conn, read))
            return read - planned, status, json.loads(data) if status == 200 else {"body": data[:200]}, late, \
                planned, read

        start = time.perf_counter() + 0.05
        tasks = []
        for i, request in enumerate(requests):
            planned = start + i / rate
            wait = planned - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(request, planned)))
        results = await asyncio.gather(*tasks)
        for _reader, writer, _used in idle:
            writer.close()
        return results

    return asyncio.run(main())
