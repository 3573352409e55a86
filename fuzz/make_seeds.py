#!/usr/bin/env python3
"""Write the seed corpora fuzz/corpus/fuzz_core/ and fuzz/corpus/fuzz_uring_sqe/ and
the dictionaries fuzz/fuzz_core.dict and fuzz/fuzz_uring_sqe.dict: one small program
per scenario, in the byte encodings that fuzz/fuzz_core.c and fuzz/fuzz_uring_sqe.c
decode.  Standard library only.

    python3 fuzz/make_seeds.py            # rewrite the seeds and the dictionary
    python3 fuzz/make_seeds.py --check    # exit 1 if the committed files differ

The fuzz_core encoding (keep in sync with enum action in fuzz_core.c):
  header: h0 = sq_sel | cq_shift << 3 | cancel_policy << 5 | busy_on_backlog << 7
            sq = [1, 2, 4, 8, 16, 4, 8, 2][sq_sel], cq = sq << cq_shift,
            policy 0 answer, 1 hold, 2 deferred
          h1 = submit mode (0 NOW, 1 BATCH, 2 STRICT)
  then actions: one opcode byte (taken modulo the number of actions) and its
  operand bytes; running out of bytes ends the program.

The fuzz_uring_sqe encoding (enum action in fuzz_uring_sqe.c):
  header: h0 = log2(SQ entries) (0..7) | 8 to ask for a CQ as small as the SQ
          h1 = submit mode
  then actions as above.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

ACTIONS = [
    "nop", "timeout", "cancel", "poll", "recv", "recv_ms", "send", "send_zc",
    "recvmsg", "sendmsg", "sendmsg_zc", "accept", "accept_ms", "connect", "shutdown",
    "close", "socket", "mode", "submit", "wake", "reap", "k_complete", "k_recv", "k_zc",
    "raw", "dup", "knob", "burst", "wait", "waiter", "misc", "k_flush", "bad_args",
    "close_early",
]
OP = {name: i for i, name in enumerate(ACTIONS)}

# modes and knobs
NOW, BATCH, STRICT = 0, 1, 2
ANSWER, HOLD, DEFERRED = 0, 1, 2
SQ_SEL = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}
KNOB = {"refuse_consume": 0, "enter_busy": 1, "busy_on_backlog": 2, "cancel_policy": 3,
        "register_error": 4, "eintr": 5, "auto_nop_off": 6, "eio": 7}

# pick_res() table indexes
RES = {0: 0, 1: 1, 7: 2, 64: 3, 4096: 4, "INT_MAX": 5, "EAGAIN": 6, "ECANCELED": 7,
       "ENOBUFS": 8, "ECONNRESET": 9, "EINVAL": 10, "ETIME": 11, "EPIPE": 12, "INT_MIN": 13,
       3: 14, 128: 15}
REAP_MAX = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 64: 6, "all": 7}
RECV_SIZES = [1, 2, 3, 8, 16, 64, 100, 256]
RECV_COUNTS = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5}


class Prog:
    def __init__(self, sq=8, cq_shift=1, policy=ANSWER, busy_on_backlog=False, mode=NOW):
        self.b = bytearray([SQ_SEL[sq] | cq_shift << 3 | policy << 5 | int(busy_on_backlog) << 7,
                            mode])

    def op(self, name, *operands):
        self.b.append(OP[name])
        self.b.extend(operands)
        return self

    # -- submissions
    def nop(self):
        return self.op("nop")

    def timeout(self, count=0, flags_sel=0):
        return self.op("timeout", count, flags_sel)

    def cancel(self, which="live", arg=0, flags_sel=0):
        return self.op("cancel", {"live": 0, "any_earlier": 1, "garbage": 2, "wake": 3}[which],
                       arg, flags_sel)

    def poll(self, fd=0, multishot=False, first_seq=0, mask_sel=0):
        return self.op("poll", fd, mask_sel, int(multishot), first_seq)

    def recv(self, fd=0, length=32, waitall=False):
        return self.op("recv", fd, length, int(waitall))

    def recv_ms(self, fd=0, size=16, count=4, first_seq=0):
        return self.op("recv_ms", fd, RECV_SIZES.index(size), RECV_COUNTS[count], first_seq)

    def send(self, fd=0, length=16):
        return self.op("send", fd, length, 0)

    def send_zc(self, fd=0, length=16, report=False, poll_first=False):
        return self.op("send_zc", fd, length, int(report) | int(poll_first) << 1)

    def sendmsg_zc(self, fd=0, report=False):
        return self.op("sendmsg_zc", fd, int(report))

    def accept(self, fd=0, with_addr=False):
        return self.op("accept", fd, int(with_addr))

    def accept_ms(self, fd=0, first_seq=0):
        return self.op("accept_ms", fd, 0, first_seq)

    def socket(self):
        return self.op("socket", 0)

    # -- core calls
    def mode(self, m):
        return self.op("mode", m)

    def submit(self):
        return self.op("submit")

    def wake(self):
        return self.op("wake")

    def reap(self, max="all", refuse_at=None, refuse_val=0, refuse_wakes=False):
        rb = 0xff if refuse_at is None else refuse_at
        return self.op("reap", REAP_MAX[max], rb, refuse_val | int(refuse_wakes) << 2)

    def wait(self, min_complete=1, timeout="zero"):
        return self.op("wait", min_complete, {"zero": 1, "forever": 2, "1us": 0}[timeout])

    def waiter(self):
        return self.op("waiter")

    def misc(self, what, mode=None):
        self.op("misc", {"ready": 0, "staged": 1, "probe": 2, "mode": 3, "backend": 4}[what])
        if what == "mode":
            self.b.append(mode)
        return self

    def bad_args(self, case):
        return self.op("bad_args", case)

    def close(self, timeout="zero"):
        return self.op("close_early", 0 if timeout == "zero" else 1)

    # -- the fake kernel
    def k_complete(self, pick=0, res=0, more=False, nonempty=False):
        return self.op("k_complete", pick, RES[res], int(more) | int(nonempty) << 1)

    def k_complete_raw(self, pick=0, res=0, buffer=False, more=False, notif=False, bid=0):
        fl = 0x80 | int(buffer) | int(more) << 1 | int(notif) << 3
        return self.op("k_complete", pick, RES[res], fl, bid)

    def k_recv(self, pick=0, length=8, more=True):
        return self.op("k_recv", pick, length, 0 if more else 1)

    def k_zc(self, pick=0, notif_first=False, more=True, copied=False, res=64):
        what = int(notif_first) | int(more) << 1 | int(copied) << 2
        return self.op("k_zc", pick, what, RES[res])

    def raw(self, target, arg=0, res=0, buffer=False, more=False, notif=False, bid=0):
        sel = {"live": 0, "stale": 1, "wake": 2, "internal": 3, "gen0": 4, "far": 5}[target]
        fl = int(buffer) | int(more) << 1 | int(notif) << 3
        return self.op("raw", sel, arg, RES[res], fl, bid)

    def dup(self):
        return self.op("dup")

    def knob(self, name, value):
        return self.op("knob", KNOB[name], value)

    def burst(self, n, kind):
        return self.op("burst", n - 1, {"nops": 0, "stale_cqes": 1, "complete": 2}[kind])

    def k_flush(self, res=0):
        return self.op("k_flush", RES[res])


def seeds() -> dict[str, bytes]:
    s: dict[str, Prog] = {}

    s["01_nops_reap"] = Prog().nop().nop().nop().reap().misc("ready").misc("staged")

    s["02_zc_op_then_notif"] = (Prog().send_zc().k_zc(more=True).reap()
                                .k_zc().reap().dup().reap())
    s["03_zc_notif_before_op"] = (Prog().send_zc().k_zc(notif_first=True).reap()
                                  .k_zc(more=True).reap())
    s["04_zc_report_held_until_notif"] = (Prog().send_zc(report=True).k_zc(more=True).reap()
                                          .k_zc(copied=True).reap())
    s["05_zc_report_notif_first"] = (Prog().sendmsg_zc(report=True)
                                     .k_zc(notif_first=True, copied=True).reap()
                                     .k_zc(more=True).reap())
    s["06_zc_report_refused_then_redelivered"] = (Prog().send_zc(report=True).k_zc(more=True)
                                                  .k_zc().reap(refuse_at=0, refuse_val=1)
                                                  .reap())
    s["07_zc_error_without_notif"] = (Prog().send_zc().sendmsg_zc()
                                      .k_zc(pick=0, more=False, res="EPIPE")
                                      .k_zc(pick=0, more=True).reap().k_zc().reap())

    s["08_recv_multishot_legs_then_enobufs"] = (Prog().recv_ms(size=16, count=4)
                                                .k_recv(length=5).k_recv(length=16)
                                                .k_recv(length=20).k_recv(length=1)
                                                .k_recv(length=3).reap())
    s["09_recv_multishot_recycle"] = (Prog().recv_ms(size=8, count=2)
                                      .k_recv().reap().k_recv().reap().k_recv().k_recv().reap()
                                      .k_recv(length=4, more=False).reap())
    s["10_recv_multishot_refuse_redeliver"] = (Prog().recv_ms(size=16, count=4)
                                               .k_recv(length=9).reap(refuse_at=0, refuse_val=1)
                                               .k_recv(length=7).k_recv(length=3).reap(max=1)
                                               .reap().k_complete(res=0).reap())
    s["11_recv_multishot_first_seq_wraps"] = (Prog().recv_ms(size=1, count=1, first_seq=0xfe)
                                              .k_recv(length=1).reap().k_recv(length=1).reap()
                                              .k_recv(length=1).reap().k_complete(res="ECANCELED")
                                              .reap())

    s["12_accept_multishot_fds"] = (Prog().accept_ms(first_seq=3)
                                    .k_complete(res=0, more=True).k_complete(res=0, more=True)
                                    .reap().k_complete(res=0, more=True)
                                    .k_complete(res="ECANCELED").reap())
    s["13_accept_fd_nobody_saw_closed_at_close"] = (Prog().accept(with_addr=True).socket()
                                                    .accept_ms().k_complete(pick=0, res=0)
                                                    .k_complete(pick=0, res=0)
                                                    .k_complete(pick=0, res=0, more=True)
                                                    .reap(max=1).close())

    s["14_cq_overflow_backlog"] = (Prog(sq=16, cq_shift=0, mode=BATCH).burst(64, "nops")
                                   .submit().misc("ready").reap(max=3).reap())
    s["15_overflow_busy_on_backlog"] = (Prog(sq=4, cq_shift=0, busy_on_backlog=True)
                                        .burst(40, "stale_cqes").nop().nop().reap(max=1)
                                        .burst(10, "nops").reap())
    s["16_strict_sq_full"] = (Prog(sq=2, mode=STRICT).nop().nop().nop().recv_ms()
                              .misc("staged").submit().reap().nop().wake().reap())

    s["17_close_with_ops_in_flight"] = (Prog(sq=16).poll(multishot=True).recv().timeout()
                                        .accept_ms().recv_ms().send_zc()
                                        .k_zc(more=True).reap().close())
    s["18_cancel_live_and_stale"] = (Prog().nop().reap().timeout()
                                     .cancel("live", arg=0).cancel("any_earlier", arg=0)
                                     .cancel("garbage", arg=9).reap())
    s["19_hold_policy_close"] = (Prog(policy=HOLD).timeout().cancel("live").poll().reap()
                                 .close())
    s["20_deferred_cancel_close_bounded"] = (Prog(policy=DEFERRED).poll(multishot=True)
                                             .recv().close(timeout="100us"))

    s["21_raw_and_garbage_cqes"] = (Prog().recv_ms(size=8, count=2).nop()
                                    .raw("wake").raw("internal").raw("gen0", arg=5)
                                    .raw("far", arg=1)
                                    .raw("live", arg=0, res=4096, buffer=True, more=True, bid=1)
                                    .raw("live", arg=0, res=3, buffer=True, more=True, bid=7)
                                    .dup().reap().raw("stale", arg=0, res=1).reap())
    s["22_busy_and_eintr"] = (Prog().knob("enter_busy", 5).knob("eintr", 3).nop().nop()
                              .reap().wait().knob("enter_busy", 20).nop().reap().submit()
                              .reap())
    s["23_waiter_forces_batch_flush"] = (Prog(mode=BATCH).waiter().nop().recv().waiter()
                                         .nop().wake().wait(timeout="1us").reap())
    s["24_auto_nop_off_wake"] = (Prog().knob("auto_nop_off", 1).wake().nop()
                                 .k_complete(pick=0).k_complete(pick=0)
                                 .reap(refuse_wakes=True, refuse_val=2).reap())

    bad = Prog()
    for case in range(16):
        bad.bad_args(case)
    bad.bad_args(9 | 16).bad_args(15 | 16)
    s["25_bad_arguments"] = bad
    s["26_after_close"] = (Prog().nop().close().nop().recv_ms().reap().wait().misc("ready")
                           .misc("staged").misc("probe").wake().submit().bad_args(3).close())
    s["27_register_error_and_refuse_consume"] = (Prog().knob("register_error", 1).recv_ms()
                                                 .knob("register_error", 0)
                                                 .knob("refuse_consume", 1).nop().recv_ms()
                                                 .submit().knob("refuse_consume", 0).submit()
                                                 .k_flush().reap())
    s["29_enter_fails_hard"] = (Prog(sq=2, cq_shift=0).poll().knob("eio", 3).nop().nop()
                                .burst(8, "stale_cqes").reap().wake().misc("backend")
                                .knob("eio", 2).close())
    s["28_kflush_everything"] = (Prog(sq=16).recv().send().poll(multishot=True).accept()
                                 .send_zc().timeout().k_flush(res=7).reap().k_flush().reap())
    return {name: bytes(p.b) for name, p in s.items()}


UACTIONS = [
    "nop", "timeout", "cancel", "poll", "recv", "recv_ms", "send", "send_zc", "recvmsg",
    "sendmsg", "sendmsg_zc", "accept", "connect", "socket", "shutdown", "close", "write",
    "drain", "client", "reap", "wait", "submit", "wake", "mode", "close_early",
]
UOP = {name: i for i, name in enumerate(UACTIONS)}
# fd selectors: recv side s0 / u0, send side s1 / u1
STREAM, UDP = 0, 1


class UProg:
    def __init__(self, log2_sq=3, small_cq=False, mode=NOW):
        self.b = bytearray([log2_sq | int(small_cq) << 3, mode])

    def op(self, name, *operands):
        self.b.append(UOP[name])
        self.b.extend(operands)
        return self

    def recv_ms(self, side=UDP, size_sel=1, log2_count=2, first_seq=0):
        return self.op("recv_ms", side, size_sel | log2_count << 2 | first_seq << 4)

    def send(self, kind="send", side=UDP, length=32, report=False):
        return self.op(kind, side | int(report) << 1, length)

    def write(self, what="udp", length=32):
        return self.op("write", {"udp": 0, "pipe": 1, "stream": 2}[what], length)

    def poll(self, fd_sel=2, send_side=False, pollout=False, multishot=False):
        return self.op("poll", fd_sel | int(send_side) << 2,
                       int(pollout) | int(multishot) << 1)

    def reap(self, max="all", refuse_at=None):
        return self.op("reap", {1: 0, 4: 1, 64: 2, "all": 3}[max],
                       0xff if refuse_at is None else refuse_at)

    def wait(self, min_complete=1):
        return self.op("wait", min_complete)


def useeds() -> dict[str, bytes]:
    s: dict[str, UProg] = {}
    s["01_nops"] = UProg().op("nop").op("nop").op("wake").reap()
    s["02_udp_recv_multishot"] = (UProg().recv_ms().write().write(length=60).write(length=3)
                                  .wait().reap().op("cancel", 0, 0).wait().reap())
    s["03_stream_recv_multishot_enobufs"] = (UProg().recv_ms(side=STREAM, size_sel=0,
                                                             log2_count=0)
                                             .write("stream", 5).wait().reap()
                                             .write("stream", 5).wait().reap())
    s["04_udp_send_zc_notif"] = (UProg().op("recv", UDP, 64).send("send_zc").wait().reap()
                                 .wait().reap())
    s["05_udp_sendmsg_zc_report"] = (UProg().send("sendmsg_zc", report=True).wait().reap()
                                     .wait().reap().op("recvmsg", UDP, 64).wait().reap())
    s["06_unix_send_zc_unsupported"] = UProg().send("send_zc", side=STREAM).wait().reap()
    s["07_accept_multishot_clients"] = (UProg().op("accept", 1).op("client").op("client")
                                        .wait().reap().op("client").reap(max=1)
                                        .op("close_early", 0))
    s["08_accept_fd_unseen_then_close"] = (UProg().op("accept", 2).op("client").wait()
                                           .op("socket", 0).op("close_early", 1))
    s["09_poll_multishot_pipe"] = (UProg().poll(multishot=True).write("pipe").wait().reap()
                                   .op("drain", 1).write("pipe").wait().reap()
                                   .op("cancel", 0, 0).wait().reap())
    s["10_timeouts_and_cancel"] = (UProg().op("timeout", 5).op("timeout", 200)
                                   .op("cancel", 0, 1).op("cancel", 1, 0).op("cancel", 2, 9)
                                   .wait().reap().wait().reap())
    s["11_connect_accept"] = UProg().op("accept", 0).op("connect").wait().reap().wait().reap()
    s["12_close_dup_shutdown"] = (UProg().op("close").op("shutdown", 1).op("recv", STREAM, 8)
                                  .wait().reap().wait().reap())
    over = UProg(log2_sq=2, small_cq=True, mode=BATCH)
    for _ in range(3):
        for _ in range(4):
            over.op("nop")
        over.op("submit")
    s["13_cq_overflow"] = over.reap(max=1).reap()
    s["14_strict_full"] = (UProg(log2_sq=1, mode=STRICT).op("nop").op("nop").op("nop")
                           .op("submit").reap().op("mode", NOW).op("nop").reap())
    s["15_refuse_and_redeliver"] = (UProg().recv_ms().write().write().wait()
                                    .reap(refuse_at=1).reap())
    s["16_close_then_calls"] = (UProg().poll(multishot=True).op("close_early", 0).op("nop")
                                .reap().wait().op("submit").op("wake"))
    return {name: bytes(p.b) for name, p in s.items()}


def udictionary() -> str:
    lines = ["# fuzz_uring_sqe action opcodes (see fuzz/make_seeds.py)"]
    for name, code in UOP.items():
        lines.append(f'{name}="\\x{code:02x}"')
    return "\n".join(lines) + "\n"


def dictionary() -> str:
    lines = ["# fuzz_core action opcodes (see fuzz/make_seeds.py)"]
    for name, code in OP.items():
        lines.append(f'{name}="\\x{code:02x}"')
    lines.append("# a few operand shapes: reap everything, legit k_complete with F_MORE")
    lines.append(f'reap_all="\\x{OP["reap"]:02x}\\x07\\xff\\x00"')
    lines.append(f'k_more="\\x{OP["k_complete"]:02x}\\x00\\x00\\x01"')
    lines.append(f'zc_notif_first="\\x{OP["k_zc"]:02x}\\x00\\x01\\x00"')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- fuzz_sim
# Executable reference of fuzz_sim.c's encoding: h0 (bits 0-1: log2 SQ, bit 2: x2,
# bit 4: CQ as small as the SQ, bits 5-7: mode % 3), h1 (bit 0: a fault profile
# follows in the program, bit 1: notify), u16 LE program length, program, then the
# sim's decision bytes.

SIM_ACTIONS = ["nop", "timeout", "cancel", "poll", "recv", "recv_ms", "send", "send_zc",
               "recvmsg", "sendmsg", "accept", "accept_ms", "connect", "read", "write",
               "openat", "shutdown_op", "peer_write", "peer_shut", "client", "reap", "wait",
               "submit", "mode", "wake", "link", "exhaust", "hold", "release", "force",
               "advance", "close", "open_real", "socket", "rwv", "fsync", "fallocate", "statx",
               "fsop", "reg_files", "fixed_file_rw", "reg_bufs", "rw_fixed", "close_direct"]
SOP = {n: i for i, n in enumerate(SIM_ACTIONS)}


class SProg:
    def __init__(self, h0: int = 0x03, h1: int = 0, decisions: bytes = b""):
        self.h0, self.h1, self.decisions, self.b = h0, h1, decisions, bytearray()

    def op(self, name: str, *operands: int) -> SProg:
        self.b.append(SOP[name])
        self.b.extend(operands)
        return self

    def raw(self, *bs: int) -> SProg:
        self.b.extend(bs)
        return self

    def data(self) -> bytes:
        n = len(self.b)
        return bytes([self.h0, self.h1, n & 0xff, n >> 8]) + bytes(self.b) + self.decisions


def sim_seeds() -> dict[str, bytes]:
    s: dict[str, SProg] = {}
    s["01_nops"] = SProg().op("nop").op("nop").op("wake").op("reap", 0x0f)
    s["02_send_recv"] = (SProg().op("send", 0, 40).op("recv", 1, 64).op("recvmsg", 0, 8)
                         .op("sendmsg", 1, 30).op("wait", 1).op("reap", 0x0f))
    s["03_recv_multishot"] = (SProg().op("recv_ms", 1, 7, 2, 0x81).op("peer_write", 0, 20)
                              .op("peer_write", 0, 90).op("wait", 1).op("reap", 0x0f)
                              .op("cancel", 0, 0).op("wait", 1))
    s["04_send_zc"] = (SProg().op("send_zc", 0, 50, 0).op("send_zc", 1, 10, 1)
                       .op("recv", 1, 80).op("wait", 1).op("wait", 1).op("reap", 0x0f))
    s["05_accept_multishot_close"] = (SProg().op("accept_ms", 0x80).op("client").op("client")
                                      .op("wait", 1).op("client").op("close", 0))
    s["06_connect_accept"] = (SProg().op("accept", 1).op("connect", 0).op("wait", 1)
                              .op("accept", 0).op("client").op("wait", 5))
    s["07_file_write_read"] = (SProg().op("write", 100, 0).op("read", 50, 2).op("wait", 1)
                               .op("read", 127, 0).op("wait", 1))
    s["08_link_chain"] = (SProg().op("link", 0x04).raw(0).raw(2, 1, 30, 1).raw(3, 0, 10)
                          .op("link", 0x83).raw(1, 5).raw(0).op("wait", 1))
    s["09_tiny_ring_overflow"] = (SProg(h0=0x10 | 0x20).op("exhaust").op("nop").op("nop")
                                  .op("submit").op("reap", 1).op("exhaust").op("reap", 0x0f))
    s["10_faults"] = (SProg(h1=1).raw(0xff, *([200] * 8)).op("send", 0, 60).op("recv", 1, 20)
                      .op("send_zc", 2, 30, 0).op("recv_ms", 3, 3, 1, 0).op("peer_write", 2, 40)
                      .op("accept_ms", 0).op("client").op("wait", 1).op("wait", 5))
    s["11_hold_release"] = (SProg().op("recv", 1, 32).op("hold", 0).op("peer_write", 0, 10)
                            .op("wait", 1).op("reap", 0x0f).op("release").op("wait", 1))
    s["12_timeouts_advance"] = (SProg().op("timeout", 0x05).op("timeout", 0x41)
                                .op("timeout", 0x3f).op("advance", 50).op("wait", 2)
                                .op("nop").op("wait", 0x83))
    s["13_openat_shutdown_eof"] = (SProg().op("openat", 3).op("shutdown_op", 0)
                                   .op("recv", 3, 16).op("peer_shut", 0).op("recv", 1, 4)
                                   .op("wait", 1).op("wait", 1))
    s["14_poll_multishot_pipe"] = (SProg().op("poll", 0x83, 0x80).op("peer_write", 4, 5)
                                   .op("wait", 1).op("recv", 4, 3).op("wait", 1)
                                   .op("cancel", 0, 0).op("wait", 1))
    s["15_refuse_redeliver"] = (SProg(h0=0x03 | 0x20).op("nop").op("nop").op("nop")
                                .op("submit").op("reap", 0x8f).op("reap", 0x9f))
    s["16_force_errors_notify"] = (SProg(h1=2).op("force", 0).op("send", 0, 10)
                                   .op("force", 0x41).op("recv", 1, 10).op("wait", 1))
    s["17_decisions_reorder"] = SProg(decisions=bytes(range(255, 0, -7))).op("nop").op(
        "send", 0, 9).op("recv", 1, 9).op("timeout", 2).op("nop").op("wait", 1).op("wait", 1)
    s["18_files_vectored_sync"] = (SProg().op("rwv", 1, 30, 40).op("rwv", 0, 63, 9)
                                   .op("fsync", 0).op("fsync", 3).op("fallocate", 0x25)
                                   .op("statx", 1).op("statx", 2).op("statx", 0).op("wait", 1))
    s["19_open_socket_close_midway"] = (SProg().op("open_real", 1).op("open_real", 0x41)
                                        .op("open_real", 0xc0).op("socket", 0).op("socket", 3)
                                        .op("wait", 1).op("open_real", 0).op("socket", 1)
                                        .op("close", 0))
    s["20_directories"] = (SProg().op("fsop", 0x00).op("fsop", 0x24).op("fsop", 0x10)
                           .op("fsop", 0x01).op("fsop", 0x91).op("wait", 1).op("fsop", 0x14))
    s["21_registered_files_buffers"] = (SProg().op("reg_files", 0).op("fixed_file_rw", 0x80, 20)
                                        .op("fixed_file_rw", 0x00, 30).op("fixed_file_rw", 0x83, 5)
                                        .op("reg_bufs", 0).op("rw_fixed", 0x85, 0)
                                        .op("rw_fixed", 0x04, 250).op("open_real", 0x42)
                                        .op("wait", 1).op("close_direct", 3).op("close_direct", 1)
                                        .op("reg_files", 1).op("reg_bufs", 1).op("wait", 1))
    s["22_connect_backlog_full"] = SProg().op("client").raw(*([SOP["connect"], 0] * 20)).op(
        "wait", 5).op("accept_ms", 0).op("wait", 1)
    return {name: p.data() for name, p in s.items()}


def sim_dictionary() -> str:
    lines = ["# fuzz_sim action opcodes (see fuzz/make_seeds.py)"]
    for name, code in SOP.items():
        lines.append(f'sim_{name}="\\x{code:02x}"')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- fuzz_diff
# u16 LE program length, then steps: a byte h (1 + h % 3 items), then per item
# two bytes a, b: kind = a % 14, end = a >> 7, file offset = (a >> 4 & 7) * 512 +
# (b & 0x3f), length = 1 + b % 256.  The rest of the input is the sim's decisions.

DIFF_KINDS = ["nop", "timeout", "send", "sendmsg", "send_zc", "recv", "recvmsg", "read",
              "write", "openat", "cancel_garbage", "shutdown", "poll_in", "poll_out"]


def _diff_a(kind: str, end: int = 0) -> int:
    k = DIFF_KINDS.index(kind)
    return next(a for a in range(256) if a % len(DIFF_KINDS) == k and a >> 7 == end)


def diff_prog(*steps: list[tuple[str, int, int]], decisions: bytes = b"") -> bytes:
    b = bytearray()
    for items in steps:
        b.append(len(items) - 1)
        for kind, end, length in items:
            b += bytes([_diff_a(kind, end), (length - 1) & 0xff])
    return bytes([len(b) & 0xff, len(b) >> 8]) + bytes(b) + decisions


def diff_seeds() -> dict[str, bytes]:
    return {
        "01_nop_timeout_openat": diff_prog([("nop", 0, 1), ("timeout", 0, 5), ("openat", 0, 1)]),
        "02_send_recv": diff_prog([("send", 0, 100)], [("recv", 1, 40)], [("recv", 1, 100)]),
        "03_send_recv_same_batch": diff_prog([("send", 1, 64), ("recv", 0, 200)],
                                             [("sendmsg", 0, 10), ("recvmsg", 1, 5)]),
        "04_recv_pending_cancelled": diff_prog([("recv", 0, 16), ("nop", 0, 1)],
                                               [("send", 0, 8)], [("recv", 1, 4)]),
        "05_send_zc_unix": diff_prog([("send_zc", 0, 30)], [("recv", 1, 30)]),
        "06_file": diff_prog([("write", 0, 200)], [("read", 0, 255), ("read", 1, 16)],
                             [("write", 1, 100)], [("read", 0, 200)]),
        "07_shutdown_eof_epipe": diff_prog([("send", 0, 20)], [("shutdown", 0, 1)],
                                           [("recv", 1, 10)], [("recv", 1, 50)],
                                           [("send", 0, 5)], [("recv", 1, 1)]),
        "08_cancel_garbage": diff_prog([("cancel_garbage", 0, 1), ("nop", 1, 1)]),
        "10_polls": diff_prog([("poll_in", 0, 1), ("poll_out", 1, 1)], [("send", 0, 9)],
                              [("poll_in", 1, 1), ("send", 1, 3)], [("shutdown", 1, 1)],
                              [("poll_in", 0, 1), ("poll_out", 1, 1)]),
        "09_reordered": diff_prog([("send", 0, 50), ("send", 1, 60), ("read", 0, 9)],
                                  [("recv", 1, 255), ("recv", 0, 255), ("timeout", 0, 3)],
                                  decisions=bytes([5, 3, 1, 2, 0, 7] * 8)),
    }


# --------------------------------------------------------------------------- fuzz_sim_trace
# Byte 0: odd = the rest is a decision byte stream (record, replay, rerun, compare);
# even = the rest is a trace (bit 1: the "RSIM\1" + zero seed header is put in front).

def trace_seeds() -> dict[str, bytes]:
    hdr = b"RSIM\x01" + bytes(8)
    return {
        "01_bytes_zero": b"\x01",
        "02_bytes_mixed": b"\x03" + bytes(range(0, 250, 3)),
        "03_bytes_small_cq_zc": b"\x0d" + bytes([200, 1, 7, 99, 3] * 10),
        "04_bytes_poll_ms": b"\x11" + bytes([9, 8, 7, 6] * 16),
        "05_trace_raw_header_only": b"\x00" + hdr,
        "06_trace_prefixed_records": b"\x02" + bytes([3, 0, 3, 1, 8, 0, 3, 2, 9, 0x81, 0x01]),
        "07_trace_bad_magic": b"\x00RSIX\x01" + bytes(8) + b"\x03\x00",
        "08_trace_leb128_overlong": b"\x02" + bytes([3, 0xff, 0xff, 0xff, 0xff, 0x7f, 3, 0x80]),
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    want: dict[Path, bytes] = {}
    stale: list[Path] = []
    for target, gen, dic in (("fuzz_core", seeds, dictionary),
                             ("fuzz_uring_sqe", useeds, udictionary),
                             ("fuzz_sim", sim_seeds, sim_dictionary),
                             ("fuzz_diff", diff_seeds, None),
                             ("fuzz_sim_trace", trace_seeds, None)):
        corpus = HERE / "corpus" / target
        mine = {corpus / name: data for name, data in gen().items()}
        want.update(mine)
        if dic is not None:
            want[HERE / f"{target}.dict"] = dic().encode()
        # Only the numbered seeds are ours; inputs merged in by `nox -s fuzz -- --merge`
        # (named by their sha1) are left alone.
        if corpus.is_dir():
            stale += [p for p in corpus.glob("[0-9][0-9]_*") if p not in mine]
    differ = [p for p, d in want.items() if not p.is_file() or p.read_bytes() != d]
    if check:
        for p in differ + stale:
            print(f"out of date: {p.relative_to(HERE.parent)}")
        return 1 if differ or stale else 0
    for p in stale:
        p.unlink()
    for p, d in want.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(d)
    ndicts = sum(1 for p in want if p.suffix == ".dict")
    print(f"wrote {len(want) - ndicts} seeds under fuzz/corpus/ and {ndicts} dictionaries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
