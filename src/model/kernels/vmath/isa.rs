//! Which vector instructions the CPU has, which path the kernels take, and a line saying so
//! for every speed figure (the benches print it: the same code runs 2× apart on an AVX2 and an
//! AVX-512 machine).

/// The vector instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, any CPU.
    Scalar,
    /// 8 lanes (x86-64 with AVX2 and FMA).
    Avx2,
    /// 16 lanes (x86-64 with AVX-512F: Intel since Skylake-SP, AMD since Zen 4).
    Avx512,
}

impl Isa {
    /// Every path this CPU can run, narrowest first.
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
            if avx2 {
                out.push(Isa::Avx2);
            }
            if avx2 && std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
        }
        out
    }

    /// Its name, as `ENCODERLAB_SIMD` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// The path the kernels take: the widest this CPU has, or a narrower one named by
/// `ENCODERLAB_SIMD` (`scalar`, `avx2`; an unknown or unavailable name is ignored). Read once.
pub(crate) fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let have = Isa::available();
        let widest = *have.last().unwrap_or(&Isa::Scalar);
        std::env::var("ENCODERLAB_SIMD")
            .ok()
            .and_then(|v| have.iter().copied().find(|i| i.name() == v.trim()))
            .unwrap_or(widest)
    })
}

/// Runs `f` compiled for the path of `isa()`: for plain loops over f32 slices, which the
/// compiler then vectorises 16 or 8 lanes wide instead of the x86-64 baseline's 4. The bits do
/// not change: Rust never fuses a multiply and an add, nor reorders a floating-point sum, on its
/// own. `f` must be an `#[inline(always)]` closure (compiled into the wide function rather than
/// called from it: `wide(#[inline(always)] || …)`), and a parallel loop wraps each task's body,
/// not the loop.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    match isa() {
        // SAFETY: `isa` is a path the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { wide_avx512(f) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { wide_avx2(f) },
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn wide_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wide_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The CPU's name, its widest vector extensions (AVX2, AVX-512, AVX512-BF16, AMX) and the path
/// our kernels take, in a line: what every speed figure is printed beside.
pub fn cpu_summary() -> String {
    let (name, isa) = cpu_parts();
    format!("{name}: {isa}")
}

/// [`cpu_summary`] without the CPU's name: `AVX-512, AVX512-BF16, no AMX; kernels avx512`.
pub fn isa_summary() -> String {
    cpu_parts().1
}

fn cpu_parts() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let name = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|f| f.trim_start_matches([' ', '\t', ':']).split_whitespace().collect())
        .unwrap_or_default();
    let has = |f: &str| flags.contains(&f);
    let have = Isa::available();
    let mut ext = Vec::new();
    if have.contains(&Isa::Avx512) {
        ext.push("AVX-512");
    } else if have.contains(&Isa::Avx2) {
        ext.push("AVX2");
    } else {
        ext.push("no AVX2");
    }
    if has("avx512_bf16") {
        ext.push("AVX512-BF16");
    }
    if has("amx_tile") {
        ext.push("AMX");
    } else if !flags.is_empty() {
        ext.push("no AMX");
    }
    (name, format!("{}; kernels {}", ext.join(", "), isa().name()))
}
