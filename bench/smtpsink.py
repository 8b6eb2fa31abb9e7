"""A minimal SMTP sink for benchmarks: accepts everything, keeps nothing but a count.

aiosmtpd tops out near 2,200 messages/s on these machines, below what the engine sends;
this answers EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT with the replies a real
server gives, parsing bytes with no per-line objects, so the sink is not what is measured.
`XCOUNT` answers `250 <messages> <bytes>`, for the benchmark to check what arrived.

`--reply-delay` and `--data-delay` make it answer like a relay: each reply that long
after the one before it on the same connection (or after its command came), and the
reply to a message's content after `--data-delay` (the relay writing its queue file),
connections independent of each other; the replies to what one read brought (a
pipelined group) go out together, once the last is ready. It waits with select(2),
whose timeout is in microseconds (epoll's is in milliseconds, which would round each
0.5 ms up to 1).

    python -m bench.smtpsink --port 2525 [--reply-delay 0.0005 --data-delay 0.003]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import selectors
import signal

STATS = {"messages": 0, "bytes": 0}
END = b"\r\n.\r\n"
DELAYS = {"reply": 0.0, "data": 0.0}


class Session(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        self.ready = 0.0  # when the last reply scheduled goes out
        self.held: list[bytes] = []  # replies of the input read so far, not written yet
        self.transport.write(b"220 sink.bench ESMTP ready\r\n")

    def _later(self, reply: bytes, delay: float) -> None:
        """Hold `reply`, ready `delay` seconds after the previous reply, or after now."""
        self.ready = max(self.ready, self.loop.time()) + delay
        self.held.append(reply)

    def _flush(self) -> None:
        """The replies held, in one write once the last of them is ready: the input is
        all read, and a server "MUST send all pending responses immediately whenever
        the local TCP input buffer is emptied" (RFC 2920 §3.2), not one at a time."""
        if self.held:
            self.loop.call_at(self.ready, self._write, b"".join(self.held))
            self.held = []

    def _write(self, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(reply)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if DELAYS["reply"] or DELAYS["data"]:

            def write(reply: bytes) -> None:
                slow = DELAYS["data"] if reply.startswith(b"250 2.0.0") else DELAYS["reply"]
                self._later(reply, slow)

        else:
            write = self.transport.write
        while buffer:
            if self.in_data:
                # A message may end right after DATA's reply (an empty body) or later.
                if buffer.startswith(b".\r\n"):
                    end, skip = 0, 3
                else:
                    end = buffer.find(END)
                    if end < 0:
                        # keep only a tail long enough to hold a split terminator
                        if len(buffer) > 4:
                            STATS["bytes"] += len(buffer) - 4
                            buffer = buffer[-4:]
                        break
                    skip = len(END)
                STATS["bytes"] += end
                STATS["messages"] += 1
                buffer = buffer[end + skip :]
                self.in_data = False
                write(b"250 2.0.0 Ok: queued\r\n")
                continue
            eol = buffer.find(b"\r\n")
            if eol < 0:
                break
            line, buffer = buffer[:eol], buffer[eol + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                write(b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                self.in_data = True
                write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 2.0.0 Bye\r\n")
                self.transport.close()
                buffer = b""
            elif verb == b"XCOU":
                self.transport.write(b"250 %d %d\r\n" % (STATS["messages"], STATS["bytes"]))
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP", b"HELO"):
                write(b"250 2.1.0 Ok\r\n")
            else:
                write(b"502 5.5.2 Command not recognized\r\n")
        self.buffer = buffer
        self._flush()


def count(port: int, host: str = "127.0.0.1") -> tuple[int, int]:
    """(messages, bytes) received so far by the sink on `port`."""
    import smtplib

    with smtplib.SMTP(host, port, timeout=10) as smtp:
        _code, reply = smtp.docmd("XCOUNT")
        messages, size = reply.split()
        return int(messages), int(size)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Session, host, port, backlog=256)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"smtp sink listening on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply-delay", type=float, default=0.0, help="seconds a reply")
    parser.add_argument("--data-delay", type=float, default=0.0, help="seconds to take a message")
    args = parser.parse_args()
    DELAYS.update(reply=args.reply_delay, data=args.data_delay)
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(
            loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())
        ) as runner,
    ):
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
