//! Generates `FUNCTIONS` distinct, non-trivial functions and a table of them into
//! `OUT_DIR/functions.rs`, so the component is mostly code and well over 1 MB.

use std::fmt::Write as _;
use std::path::PathBuf;

const FUNCTIONS: usize = 4000;

/// xorshift64*: deterministic, so every build generates the same code.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    let mut rng = Rng(0x5EED_2E10);
    let mut src = String::new();
    for i in 0..FUNCTIONS {
        function(&mut src, i, &mut rng);
    }
    src.push_str(&format!(
        "static TABLE: [fn(u64) -> u64; {FUNCTIONS}] = [\n"
    ));
    for i in 0..FUNCTIONS {
        let _ = writeln!(src, "    f{i},");
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("functions.rs"), src).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}

/// One function: a data-dependent loop over a few randomly chosen mixing steps between
/// fixed ones that keep every variable live, then a randomly chosen finish. The constants
/// differ per function, so none can be merged.
fn function(src: &mut String, i: usize, rng: &mut Rng) {
    let _ = writeln!(src, "#[inline(never)]\nfn f{i}(x: u64) -> u64 {{");
    let _ = writeln!(src, "    let mut a = x ^ {:#x};", rng.next());
    let _ = writeln!(
        src,
        "    let mut b = x.rotate_left({}).wrapping_mul({:#x});",
        rng.below(63) + 1,
        rng.next() | 1
    );
    let _ = writeln!(src, "    let mut c = {:#x}u64;", rng.next());
    let _ = writeln!(
        src,
        "    for i in 0..((x & {}) + {}) {{",
        rng.below(8) + 3,
        rng.below(5) + 2
    );
    let _ = writeln!(
        src,
        "        a = a.wrapping_add(b ^ i.wrapping_mul({:#x})).rotate_left({});",
        rng.next() | 1,
        rng.below(63) + 1
    );
    for _ in 0..(rng.below(4) + 5) {
        let step = match rng.below(8) {
            0 => format!(
                "a = a.wrapping_add(b ^ {:#x}).rotate_left({});",
                rng.next(),
                rng.below(63) + 1
            ),
            1 => format!(
                "b = b.wrapping_mul({:#x}) ^ (a >> {});",
                rng.next() | 1,
                rng.below(63) + 1
            ),
            2 => format!("c ^= a.wrapping_sub(i.wrapping_mul({:#x}));", rng.next()),
            3 => {
                let mask = (rng.next() & 0xff) | 1;
                let value = rng.next() & mask;
                format!(
                    "if a & {mask:#x} == {value:#x} {{ b = b.wrapping_sub(c) }} else {{ c = c.rotate_right({}) ^ b }}",
                    rng.below(63) + 1
                )
            }
            4 => format!(
                "a = (a ^ (c << {})).wrapping_mul({:#x});",
                rng.below(31) + 1,
                rng.next() | 1
            ),
            5 => format!("b = b.swap_bytes().wrapping_add(a ^ {:#x});", rng.next()),
            6 => format!(
                "c = c.wrapping_add((a | {:#x}) % ((b & 0xffff) | 1));",
                rng.next()
            ),
            _ => format!(
                "a ^= (b.count_ones() as u64).wrapping_mul({:#x}) ^ c;",
                rng.next()
            ),
        };
        let _ = writeln!(src, "        {step}");
    }
    let _ = writeln!(
        src,
        "        b ^= c.rotate_left({}) ^ {:#x};\n        c = c.wrapping_add(a) ^ {:#x};",
        rng.below(63) + 1,
        rng.next(),
        rng.next()
    );
    src.push_str("    }\n");
    let finish = match rng.below(5) {
        0 => format!("a ^ b ^ c ^ {:#x}", rng.next()),
        1 => format!("b.wrapping_add(c).wrapping_mul({:#x}) ^ a", rng.next() | 1),
        2 => "a.wrapping_mul(b | 1) ^ c".to_owned(),
        3 => format!(
            "(a >> {}) ^ b ^ c.rotate_left({})",
            rng.below(63) + 1,
            rng.below(63) + 1
        ),
        _ => format!("a.wrapping_sub(b) ^ c ^ {:#x}", rng.next()),
    };
    let _ = writeln!(src, "    {finish}\n}}");
}
