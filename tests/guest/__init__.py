"""The tiny bootable test guest (Debian kernel + busybox initramfs + qemu-guest-agent)."""
