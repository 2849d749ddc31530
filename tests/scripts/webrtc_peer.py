#!/usr/bin/env python3
"""An independent WebRTC endpoint (aiortc: ICE, DTLS-SRTP) for srtpgate's tests.

    webrtc_peer.py offer  [--seconds N]   prints {"sdp": offer}, reads {"sdp": answer}
    webrtc_peer.py answer [--seconds N]   reads {"sdp": offer}, prints {"sdp": answer}

One JSON object per line on stdin/stdout. The peer sends a 440 Hz tone (deterministic
frames) and, N seconds after the remote description is set, prints
{"frames": <audio frames received>, "ice": ..., "dtls": ...} and exits. Only loopback
candidates are gathered, so nothing leaves the machine.
"""
import argparse
import asyncio
import fractions
import json
import math
import sys

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
import av

# Loopback only: the tests run on 127.0.0.1 and must not send anywhere else.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

RATE = 8000
SAMPLES = 160  # 20 ms


class Tone(MediaStreamTrack):
    """A 440 Hz sine at 8 kHz, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.pts = 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_event_loop()
        if self.start is None:
            self.start = loop.time()
        wait = self.start + self.pts / RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = [
            int(8000 * math.sin(2 * math.pi * 440 * (self.pts + i) / RATE))
            for i in range(SAMPLES)
        ]
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
        frame.sample_rate = RATE
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, RATE)
        self.pts += SAMPLES
        return frame


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def read_json():
    line = await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("no input")
    return json.loads(line)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["offer", "answer"])
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()

    pc = RTCPeerConnection()
    received = {"frames": 0}

    @pc.on("track")
    def on_track(track):
        async def consume():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                received["frames"] += 1

        asyncio.ensure_future(consume())

    pc.addTrack(Tone())
    if args.mode == "offer":
        await pc.setLocalDescription(await pc.createOffer())
        emit({"sdp": pc.localDescription.sdp})
        answer = await read_json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    else:
        offer = await read_json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"sdp": pc.localDescription.sdp})

    await asyncio.sleep(args.seconds)
    sctp = pc.getTransceivers()[0].receiver.transport if pc.getTransceivers() else None
    emit(
        {
            "frames": received["frames"],
            "ice": pc.iceConnectionState,
            "dtls": sctp.state if sctp is not None else None,
        }
    )
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
