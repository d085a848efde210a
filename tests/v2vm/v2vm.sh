#!/bin/bash
# v2vm.sh 'CMD' — run CMD inside a throwaway qemu VM (Debian bookworm 6.1 kernel + busybox
# initramfs) whose /sys/fs/cgroup is cgroup2 with every controller enabled in the root's
# subtree_control. CMD runs via busybox sh as root (PID 1's child, root cgroup) with
# cwd = the shared folder (9p, mounted at /mnt/share). Put static binaries in the share.
# Prints CMD's stdout (stdout) and stderr (stderr), then "exit code: N"; exits N
# (125 when the VM itself failed; console log is printed then).
# Env: V2VM_DIR cache for kernel/initramfs (default ~/.cache/estiba-v2vm: our own, so another
#      copy of this script with a different init cannot swap the initramfs under us)  V2VM_SHARE (default $V2VM_DIR/share)   V2VM_ACCEL tcg|kvm (default tcg;
#      kvm does NOT work on this host: kvm_pvm)   V2VM_CPU (tcg cpu model, default max)
#      V2VM_MEM MiB (1024)   V2VM_SMP (2)   V2VM_TIMEOUT s (300)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 'CMD'" >&2; exit 2; }
BASE=${V2VM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/estiba-v2vm}
INIT=$(dirname "$(readlink -f "$0")")/v2vm-init
SHARE=${V2VM_SHARE:-$BASE/share}
ACCEL=${V2VM_ACCEL:-tcg}
KDIR=$BASE/k-generic
INITRD=$BASE/initramfs.cpio.gz
mkdir -p "$SHARE" "$BASE"

# ---------- one-time setup: qemu, busybox-static, kernel (extracted from .deb, not installed) ----------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
{ [ -x /bin/busybox ] && /bin/busybox --list | grep -qx switch_root; } || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$VMLINUZ" ]; then
  # generic (not -cloud) flavour: the cloud kernel has no 9p
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
  [ -n "$KPKG" ] || { apt-get update -qq >&2; KPKG=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1); }
  (cd "$BASE" && rm -f linux-image-*.deb && apt-get download "$KPKG" >&2 2>/dev/null)
  mkdir -p "$KDIR" && dpkg-deb -x "$BASE"/"$KPKG"_*.deb "$KDIR"
  VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
fi
KVER=${VMLINUZ##*/vmlinuz-}
# Uncompressed ELF vmlinux boots via PVH: skips the in-guest xz decompression (~2-3 s under TCG)
if [ ! -s "$BASE/vmlinux" ]; then
  off=$(grep -abo $'\xfd7zXZ\x00' "$VMLINUZ" | head -1 | cut -d: -f1)
  tail -c +$((off+1)) "$VMLINUZ" | xz -dc > "$BASE/vmlinux.tmp" 2>/dev/null || true
  mv "$BASE/vmlinux.tmp" "$BASE/vmlinux"
fi
if [ ! -f "$INITRD" ] || [ "$INIT" -nt "$INITRD" ] || [ "$0" -nt "$INITRD" ]; then
  R=$(mktemp -d); chmod 755 "$R"
  mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,run,newroot,mnt/share,lib/modules,etc}
  cp /bin/busybox "$R/bin/busybox"; cp "$INIT" "$R/init"; chmod 755 "$R/init"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"; echo 'root:x:0:' > "$R/etc/group"
  M=$KDIR/lib/modules/$KVER/kernel
  for m in drivers/virtio/{virtio_ring,virtio,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio_pci} \
           net/9p/{9pnet,9pnet_virtio} fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay; do
    cp "$M/$m.ko" "$R/lib/modules/"
  done
  # The engine's network layer: nftables NAT, veth, ifb and tc shaping, and
  # the anchor bridge (libcrc32c asks the crypto API for "crc32c", so its
  # generic implementation goes first). Listed in dependency order (no kmod in the VM): the
  # init loads the file's lines one by one with busybox insmod.
  : > "$R/lib/modules/net.order"
  for m in crypto/crc32c_generic net/netfilter/nfnetlink lib/libcrc32c net/netfilter/nf_tables \
           net/ipv4/netfilter/nf_defrag_ipv4 net/ipv6/netfilter/nf_defrag_ipv6 \
           net/netfilter/nf_conntrack net/netfilter/nf_nat net/netfilter/nft_chain_nat \
           net/netfilter/nft_masq net/netfilter/nft_nat net/netfilter/nft_ct net/netfilter/nft_fib \
           net/ipv6/netfilter/nft_fib_ipv6 net/ipv4/netfilter/nft_fib_ipv4 net/netfilter/nft_fib_inet \
           net/ipv4/netfilter/nf_reject_ipv4 net/ipv6/netfilter/nf_reject_ipv6 net/netfilter/nft_reject \
           net/netfilter/nft_reject_inet drivers/net/veth drivers/net/ifb net/sched/sch_tbf \
           net/sched/sch_htb net/sched/sch_ingress net/sched/act_mirred net/sched/cls_matchall \
           net/sched/cls_u32 net/sched/cls_fw net/llc/llc net/802/stp net/bridge/bridge; do
    if [ -f "$M/$m.ko" ]; then
      cp "$M/$m.ko" "$R/lib/modules/"; echo "${m##*/}" >> "$R/lib/modules/net.order"
    fi
  done
  (cd "$R" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$INITRD.tmp") && mv "$INITRD.tmp" "$INITRD"
  rm -rf "$R"
fi

# ---------- run ----------
CTL=$SHARE/.v2vm; rm -rf "$CTL"; mkdir -p "$CTL"
printf '%s\n' "$1" > "$CTL/cmd"
case $ACCEL in
  kvm) ACC=(-accel kvm -cpu host) ;;
  *)   ACC=(-accel tcg,thread=multi -cpu "${V2VM_CPU:-max}") ;;
esac
set +e
timeout "${V2VM_TIMEOUT:-300}" qemu-system-x86_64 "${ACC[@]}" -M q35 -m "${V2VM_MEM:-1024}" -smp "${V2VM_SMP:-2}" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$BASE/vmlinux" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
  -serial file:"$CTL/console.log" \
  -fsdev local,id=share,path="$SHARE",security_model=none \
  -device virtio-9p-pci,fsdev=share,mount_tag=share
qrc=$?
set -e
if [ ! -f "$CTL/rc" ]; then
  echo "v2vm: VM did not report an exit code (qemu rc=$qrc); console log:" >&2
  cat "$CTL/console.log" >&2; exit 125
fi
cat "$CTL/stdout"; cat "$CTL/stderr" >&2
rc=$(cat "$CTL/rc"); echo "exit code: $rc"; exit "$rc"
