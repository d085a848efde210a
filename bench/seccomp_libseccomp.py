#!/usr/bin/python3
"""Compile an OCI linux.seccomp profile (JSON on stdin) with libseccomp, as
runc does, and write the BPF program libseccomp would load to argv[1].

argv[2] is libseccomp's SCMP_FLTATR_CTL_OPTIMIZE level: 1 (runc's, the
default: rules in priority order) or 2 (binary tree). runc's -ENOSYS stub,
a dozen instructions prepended by runc, is not included.
"""
import json
import sys

import seccomp

ARCHES = {"SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32", "SCMP_ARCH_X86_64": "x86_64"}
OPS = {"SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
       "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
       "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}


def action(name, errno):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(1 if errno is None else errno)
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    raise SystemExit(f"action {name} not handled by this script")


def main():
    prof = json.load(sys.stdin)
    default = action(prof["defaultAction"], prof.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, int(sys.argv[2]))
    for a in prof.get("architectures") or []:
        arch = seccomp.Arch(ARCHES[a]) if a in ARCHES else None
        if arch is not None and arch != seccomp.Arch.NATIVE:
            try:
                f.add_arch(arch)
            except RuntimeError:
                pass  # already there (the native one)
    for rule in prof.get("syscalls") or []:
        act = action(rule["action"], rule.get("errnoRet"))
        if act == default:
            continue  # runc skips these; libseccomp refuses them
        conds = [seccomp.Arg(a["index"], OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                 if a["op"] == "SCMP_CMP_MASKED_EQ" else
                 seccomp.Arg(a["index"], OPS[a["op"]], a.get("value", 0))
                 for a in rule.get("args") or []]
        idx = [a["index"] for a in rule.get("args") or []]
        # runc: conditions on one argument twice become one rule each.
        groups = [[c] for c in conds] if len(idx) != len(set(idx)) else [conds]
        for name in rule["names"]:
            for g in groups:
                try:
                    f.add_rule(act, name, *g)
                except (RuntimeError, ValueError):
                    pass  # unknown syscall on this libseccomp: runc skips it
    with open(sys.argv[1], "wb") as out:
        f.export_bpf(out)


main()
