# Shared by scripts/vm-test (x86_64 VM: real camera and sound drivers) and scripts/board-vm
# (aarch64 VM: the cross-built binary on an emulated board). Debian's own kernel boots under
# qemu's software emulation; the host's / is the guest's /host over 9p. The kernel, its
# modules and a busybox come from Debian packages unpacked in a cache under target/vm,
# never installed on the host.
#
# Source it, then: vm_prepare ARCH (amd64 | arm64) sets vm_kver, vm_kroot, vm_initrd;
# vm_qemu ARCH SCRIPT [QEMU ARGS...] boots and has the guest's busybox sh run SCRIPT (a
# host path); the console ends with "vm: exit N", N being the script's exit code. It
# replaces the shell it runs in (call it in a pipeline), so that qemu is the script's own
# child and dies with it, even when a failed test kills the script with SIGKILL.

vm_cache=$PWD/target/vm

# The modules the initramfs loads: PCI and MMIO virtio, 9p, an entropy source (a fresh
# guest's getrandom() otherwise blocks for seconds, TLS and DTLS set-up with it), and a
# network card and a console (used by board-vm; harmless where qemu gives no such device).
vm_modules=(virtio_pci virtio_mmio 9pnet_virtio 9p virtio_rng virtio_net virtio_console)

vm_prepare() {
  local arch=$1 pkg
  pkg=$(apt-cache depends "linux-image-$arch:$arch" | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  pkg=${pkg%:*}
  [ -n "$pkg" ] || { echo "vm: no linux-image-$arch in apt's lists (dpkg --add-architecture $arch; apt-get update)" >&2; return 1; }
  vm_kver=${pkg#linux-image-}
  vm_kroot=$vm_cache/$vm_kver
  if [ ! -f "$vm_kroot/.ready" ] || [ ! -x "$vm_kroot/busybox/bin/busybox" ]; then
    echo "vm: preparing kernel $vm_kver in $vm_kroot" >&2
    rm -rf "$vm_kroot" && mkdir -p "$vm_kroot"
    (cd "$vm_cache" && apt-get download -qq "$pkg:$arch" busybox-static:"$arch" 2>/dev/null \
      && dpkg-deb -x "$pkg"_*.deb "$vm_kroot" && dpkg-deb -x busybox-static_*_"$arch".deb "$vm_kroot/busybox" \
      && rm -f "$pkg"_*.deb busybox-static_*_"$arch".deb)
    depmod -b "$vm_kroot" "$vm_kver"
    touch "$vm_kroot/.ready"
  fi

  vm_initrd=$vm_cache/initrd-$vm_kver.cpio.gz
  if [ -f "$vm_initrd" ] && [ "$vm_initrd" -nt "${BASH_SOURCE[0]}" ]; then
    return 0
  fi
  local ir m ko
  ir=$(mktemp -d)
  mkdir -p "$ir"/{bin,dev,proc,sys,host,mods}
  cp "$vm_kroot/busybox/bin/busybox" "$ir/bin/busybox"
  for m in "${vm_modules[@]}"; do
    modprobe -d "$vm_kroot" -S "$vm_kver" --show-depends "$m" | awk '/^insmod/{print $2}' | while read -r ko; do
      [ -e "$ir/mods/$(basename "$ko")" ] || { cp "$ko" "$ir/mods/"; basename "$ko" >> "$ir/mods/order"; }
    done
  done
  cat > "$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for ko in $(cat /mods/order); do insmod /mods/$ko 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host
for d in dev proc sys; do mount --bind /$d /host/$d; done
# 9p cannot hold unlinked files: temporary files go to tmpfs.
mkdir -p /host/dev/shm; mount -t tmpfs tmpfs /host/dev/shm; mount -t tmpfs tmpfs /host/run
ip link set lo up; ip link set lo multicast on
if ip link set eth0 up 2>/dev/null; then
  # qemu's user network: the host is 10.0.2.2.
  ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
else
  # Loopback only, but with a multicast route: WebRTC's mDNS socket needs one.
  ip route add 224.0.0.0/4 dev lo
fi
cmd=$(sed -n 's/.*vmcmd=\([^ ]*\).*/\1/p' /proc/cmdline)
sh "/host$cmd"
echo "vm: exit $?"
poweroff -f
INIT
  chmod +x "$ir/init"
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$vm_initrd"
  rm -rf "$ir"
}

vm_qemu() {
  local arch=$1 script=$2
  shift 2
  local machine console
  case $arch in
    amd64) machine=(qemu-system-x86_64 -cpu max) console=ttyS0 ;;
    # A Cortex-A72, as on a Raspberry Pi 4.
    arm64) machine=(qemu-system-aarch64 -M virt -cpu cortex-a72) console=ttyAMA0 ;;
  esac
  exec setpriv --pdeathsig TERM -- "${machine[@]}" -accel tcg,thread=multi -smp 2 -m 2048 -nographic -no-reboot \
    -kernel "$vm_kroot/boot/vmlinuz-$vm_kver" -initrd "$vm_initrd" \
    -append "console=$console quiet panic=-1 vmcmd=$script" \
    -virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap \
    -device virtio-rng-pci "$@"
}
