#!/usr/bin/env python3
"""Makes and checks SRTP captures with libsrtp (through pylibsrtp), so that srtp-pcap is
tested against an implementation that is not its own.

Modes:
  protect  write an SRTP/SRTCP capture made by libsrtp; print the inline key on stdout
  plain    write the same stream as plain RTP/RTCP
  check    read a capture (as written by `srtp-pcap encrypt`), unprotect it with libsrtp
           and check every packet against the stream; exit 1 on any difference

The stream: COUNT RTP packets of 160 bytes of payload (PCMU), SSRC 0x5EC0A11D, sequence
numbers from 65510 on (so they cross 65535 -> 0), payload byte i of packet k being
(k * 31 + i * 7 + 1) mod 256; after every 10th RTP packet an RTCP SR + SDES CNAME compound
packet. RTP goes to and from UDP port PORT, RTCP to and from PORT + 1, between 192.0.2.1 and
192.0.2.2 (2001:db8::1 and 2001:db8::2 with --ipv6), over Ethernet.

Only the standard library is used to read and write pcap files.
"""

import argparse
import base64
import os
import socket
import struct
import sys

SSRC = 0x5EC0A11D
FIRST_SEQ = 65510
PAYLOAD_LEN = 160
CNAME = b"srtp-pcap-test@example.invalid"
RTCP_EVERY = 10

# suite name -> (pylibsrtp profile attribute, master key + salt length)
SUITES = {
    "AES_CM_128_HMAC_SHA1_80": ("SRTP_PROFILE_AES128_CM_SHA1_80", 30),
    "AES_CM_128_HMAC_SHA1_32": ("SRTP_PROFILE_AES128_CM_SHA1_32", 30),
    "AEAD_AES_128_GCM": ("SRTP_PROFILE_AEAD_AES_128_GCM", 28),
    "AEAD_AES_256_GCM": ("SRTP_PROFILE_AEAD_AES_256_GCM", 44),
}


def payload(k):
    return bytes((k * 31 + i * 7 + 1) & 0xFF for i in range(PAYLOAD_LEN))


def rtp_packet(k):
    seq = (FIRST_SEQ + k) & 0xFFFF
    marker = 0x80 if k == 0 else 0
    header = struct.pack("!BBHII", 0x80, marker | 0, seq, 1000 + 160 * k, SSRC)
    return header + payload(k)


def rtcp_packet(sent):
    """An SR (no report blocks) followed by an SDES with one CNAME chunk."""
    ntp_sec = 3_900_000_000 + sent
    sr = struct.pack(
        "!BBHIIIIII", 0x80, 200, 6, SSRC, ntp_sec, 0, 1000 + 160 * sent, sent, sent * 160
    )
    chunk = struct.pack("!IBB", SSRC, 1, len(CNAME)) + CNAME + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, 202, (4 + len(chunk)) // 4 - 1) + chunk
    return sr + sdes


def stream(count):
    """(is_rtcp, packet) in the order they are sent."""
    for k in range(count):
        yield False, rtp_packet(k)
        if k % RTCP_EVERY == RTCP_EVERY - 1:
            yield True, rtcp_packet(k + 1)


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(ipv6, port, data):
    udp_len = 8 + len(data)
    if ipv6:
        src = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        dst = socket.inet_pton(socket.AF_INET6, "2001:db8::2")
        pseudo = src + dst + struct.pack("!IxxxB", udp_len, 17)
    else:
        src = socket.inet_aton("192.0.2.1")
        dst = socket.inet_aton("192.0.2.2")
        pseudo = src + dst + struct.pack("!xBH", 17, udp_len)
    udp = struct.pack("!HHHH", port, port, udp_len, 0) + data
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    if ipv6:
        ip = struct.pack("!IHBB", 0x60000000, udp_len, 17, 64) + src + dst
        ethertype = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + udp_len, 0x1234, 0x4000, 64, 17, 0)
        ip += src + dst
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        ethertype = 0x0800
    eth = bytes.fromhex("02005e100002 02005e100001") + struct.pack("!H", ethertype)
    return eth + ip + udp


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            sec, usec = 1_700_000_000 + i // 50, (i % 50) * 20_000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


def read_pcap(path):
    """Yields (linktype, frame) from a classic pcap file of either byte order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("no pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("bad pcap magic")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[pos + 8 : pos + 12])[0]
        yield linktype, data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen


def parse_udp(linktype, frame):
    """(dst port, payload) of a UDP frame whose checksums are right; raises otherwise."""
    if linktype == 1:
        off = 12
        while struct.unpack("!H", frame[off : off + 2])[0] in (0x8100, 0x88A8):
            off += 4
        off += 2
    elif linktype == 101:
        off = 0
    else:
        raise ValueError("unsupported link type %d" % linktype)
    ip = frame[off:]
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        if checksum(ip[:ihl]) != 0:
            raise ValueError("bad IPv4 header checksum")
        total = struct.unpack("!H", ip[2:4])[0]
        udp = ip[ihl:total]
        pseudo = ip[12:20] + struct.pack("!xBH", 17, len(udp))
    else:
        plen = struct.unpack("!H", ip[4:6])[0]
        udp = ip[40 : 40 + plen]
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(udp), 17)
    udp_len = struct.unpack("!H", udp[4:6])[0]
    if udp_len != len(udp):
        raise ValueError("UDP length %d, IP says %d" % (udp_len, len(udp)))
    if checksum(pseudo + udp) != 0:
        raise ValueError("bad UDP checksum")
    return struct.unpack("!H", udp[2:4])[0], udp[8:]


def session(suite, key, inbound):
    import pylibsrtp

    profile = getattr(pylibsrtp.Policy, SUITES[suite][0])
    ssrc_type = pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile))


def cmd_protect(args):
    key = os.urandom(SUITES[args.suite][1])
    tx = session(args.suite, key, inbound=False)
    frames = []
    if args.stun:
        frames.append(udp_frame(args.ipv6, args.port, stun_binding_request()))
    for is_rtcp, pkt in stream(args.count):
        if is_rtcp:
            frames.append(udp_frame(args.ipv6, args.port + 1, tx.protect_rtcp(pkt)))
        else:
            frames.append(udp_frame(args.ipv6, args.port, tx.protect(pkt)))
    write_pcap(args.out, frames)
    print("inline:" + base64.b64encode(key).decode())


def cmd_plain(args):
    frames = []
    if args.stun:
        frames.append(udp_frame(args.ipv6, args.port, stun_binding_request()))
    for is_rtcp, pkt in stream(args.count):
        frames.append(udp_frame(args.ipv6, args.port + is_rtcp, pkt))
    write_pcap(args.out, frames)


def stun_binding_request():
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + bytes(range(12))


def cmd_check(args):
    key_b64 = args.key.split("|")[0]
    if not key_b64.startswith("inline:"):
        sys.exit("check: --key must be inline:...")
    key = base64.b64decode(key_b64[len("inline:") :])
    rx = session(args.suite, key, inbound=True)
    expected = list(stream(args.count))
    got = []
    for linktype, frame in read_pcap(args.inp):
        port, data = parse_udp(linktype, frame)
        if data[:1] and not 128 <= data[0] <= 191:
            continue  # STUN and the like, copied through unchanged
        if port == args.port:
            got.append((False, bytes(rx.unprotect(data))))
        elif port == args.port + 1:
            got.append((True, bytes(rx.unprotect_rtcp(data))))
    if len(got) != len(expected):
        sys.exit("check: %d packets, expected %d" % (len(got), len(expected)))
    for n, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            sys.exit("check: packet %d differs: got %s, expected %s" % (n, g[1].hex(), e[1].hex()))
    rtcp = sum(1 for is_rtcp, _ in got if is_rtcp)
    print("ok: %d RTP, %d RTCP" % (len(got) - rtcp, rtcp))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("protect", "plain", "check"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, default=40000)
        s.add_argument("--count", type=int, default=50)
        if name != "plain":
            s.add_argument("--suite", choices=sorted(SUITES), required=True)
        if name == "check":
            s.add_argument("--key", required=True)
            s.add_argument("--in", dest="inp", required=True)
        else:
            s.add_argument("--out", required=True)
            s.add_argument("--ipv6", action="store_true")
            s.add_argument("--stun", action="store_true", help="put a STUN request first")
    args = p.parse_args()
    {"protect": cmd_protect, "plain": cmd_plain, "check": cmd_check}[args.mode](args)


if __name__ == "__main__":
    main()
