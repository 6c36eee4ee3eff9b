"""What the speed benchmarks print beside their figures: the CPU's vector extensions (int8 ONNX Runtime runs
about twice as fast with AVX-512 as with AVX2 only), so figures from different machines can be read."""

from __future__ import annotations

WANTED = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> str:
    """The vector extensions ONNX Runtime can use here, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    return " ".join(f for f in WANTED if f in flags) or "none of avx/avx2/avx512"
