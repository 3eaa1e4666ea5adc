#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where given colours are in a PNG, for tests/test_pg_report_html.c.

usage: report_png.py FILE.png RRGGBB...

Prints one line per colour: "RRGGBB COUNT TOP BOTTOM LEFT RIGHT", the
number of pixels of exactly that colour (alpha ignored) and their bounding
box (-1s when there are none). Decodes the PNG with the standard library
only (zlib): 8-bit greyscale, RGB or RGBA, not interlaced, which is what
Chromium's --screenshot writes. Exit 1 with a message for anything else.
"""
import struct
import sys
import zlib


def decode(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        sys.exit(f"{path}: no IHDR")
    width, height, depth, ctype, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace != 0:
        sys.exit(f"{path}: unsupported PNG (depth {depth}, colour type "
                 f"{ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        line = bytearray(raw[base + 1:base + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
            elif ftype != 0:
                sys.exit(f"{path}: bad filter {ftype} on row {y}")
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    width, height, channels, rows = decode(sys.argv[1])
    want = {}
    for hexc in sys.argv[2:]:
        want[bytes.fromhex(hexc.lstrip("#"))] = [hexc.lstrip("#").lower(),
                                                 0, -1, -1, -1, -1]
    for y, line in enumerate(rows):
        for x in range(width):
            px = line[x * channels:x * channels + 3]
            if channels == 1:
                px = px * 3
            hit = want.get(bytes(px))
            if hit is None:
                continue
            hit[1] += 1
            if hit[2] == -1:
                hit[2], hit[4], hit[5] = y, x, x
            hit[3] = y
            hit[4] = min(hit[4], x)
            hit[5] = max(hit[5], x)
    for hit in want.values():
        print(" ".join(str(v) for v in hit))


if __name__ == "__main__":
    main()
