"""RV32 software side of the PulseDL-II SoC: the cross toolchain, ELF images, QEMU as the ISA reference, and the
random-program generator of the differential test (no rtl/ or sim/ imports)."""
