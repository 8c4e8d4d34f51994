//! A fuzz runner on stable Rust: mutates each target's seeds with a seeded RNG for a bounded
//! time and reports executions and findings. No coverage feedback (that is what `cargo fuzz`
//! adds where it builds); what it has is speed, structure-aware seeds and a token dictionary.
//!
//! A panic is a finding (its input is saved and the run goes on); an input slower than
//! `--slow-ms` is a finding; a hang longer than `--hang-secs` or a crash (stack overflow, abort)
//! ends the process, and the input that did it is in `<artifacts>/<target>/current`.
//!
//! Usage: wharf-fuzz TARGET [--seconds N] [--seed S] [--max-len N] [--artifacts DIR]
//!        [--slow-ms N] [--hang-secs N]
//!        wharf-fuzz TARGET --replay FILE...
//!        wharf-fuzz --list | --write-seeds DIR

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Opts {
    target: String,
    seconds: u64,
    seed: u64,
    max_len: usize,
    artifacts: PathBuf,
    slow_ms: u64,
    hang_secs: u64,
    replay: Vec<PathBuf>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: wharf-fuzz TARGET [--seconds N] [--seed S] [--max-len N] [--artifacts DIR] \
         [--slow-ms N] [--hang-secs N] | TARGET --replay FILE... | --list | --write-seeds DIR"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--list") => {
            for (name, _) in wharf_fuzz::TARGETS {
                println!("{name}");
            }
            return ExitCode::SUCCESS;
        }
        Some("--write-seeds") => {
            let Some(dir) = args.get(1) else {
                return usage();
            };
            return match write_seeds(Path::new(dir)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("wharf-fuzz: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let Some(opts) = parse(&args) else {
        return usage();
    };
    let Some(f) = wharf_fuzz::target(&opts.target) else {
        eprintln!("wharf-fuzz: unknown target {:?} (see --list)", opts.target);
        return ExitCode::from(2);
    };
    let code = if opts.replay.is_empty() {
        fuzz(&opts, f)
    } else {
        replay(&opts, f)
    };
    wharf_fuzz::layer::cleanup();
    code
}

fn parse(args: &[String]) -> Option<Opts> {
    let mut o = Opts {
        target: String::new(),
        seconds: 60,
        seed: 0,
        max_len: 4096,
        artifacts: PathBuf::from("fuzz/artifacts"),
        slow_ms: 1000,
        hang_secs: 20,
        replay: Vec::new(),
    };
    let mut it = args.iter();
    let mut seed_set = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => o.seconds = it.next()?.parse().ok()?,
            "--seed" => {
                o.seed = it.next()?.parse().ok()?;
                seed_set = true;
            }
            "--max-len" => o.max_len = it.next()?.parse().ok()?,
            "--artifacts" => o.artifacts = PathBuf::from(it.next()?),
            "--slow-ms" => o.slow_ms = it.next()?.parse().ok()?,
            "--hang-secs" => o.hang_secs = it.next()?.parse().ok()?,
            "--replay" => o.replay.extend(it.by_ref().map(PathBuf::from)),
            s if s.starts_with('-') => return None,
            s if o.target.is_empty() => o.target = s.to_string(),
            _ => return None,
        }
    }
    if o.target.is_empty() {
        return None;
    }
    if !seed_set {
        o.seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    }
    Some(o)
}

fn write_seeds(dir: &Path) -> std::io::Result<()> {
    for (name, _) in wharf_fuzz::TARGETS {
        let d = dir.join(name);
        fs::create_dir_all(&d)?;
        for (i, s) in wharf_fuzz::seeds(name).iter().enumerate() {
            fs::write(d.join(format!("seed-{i}")), s)?;
        }
    }
    Ok(())
}

/// The message and place of the last panic, set by the hook, read after `catch_unwind`.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some(format!("{at}: {msg}"));
        }
    }));
}

fn take_panic() -> String {
    LAST_PANIC
        .lock()
        .ok()
        .and_then(|mut p| p.take())
        .unwrap_or_else(|| "panic".into())
}

fn replay(opts: &Opts, f: fn(&[u8])) -> ExitCode {
    install_hook();
    let mut failed = false;
    for p in &opts.replay {
        let data = match fs::read(p) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                failed = true;
                continue;
            }
        };
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| f(&data))) {
            Ok(()) => println!("{}: ok in {:?}", p.display(), t.elapsed()),
            Err(_) => {
                println!("{}: PANIC {}", p.display(), take_panic());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// xorshift64*: enough randomness for mutations, and a run is replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that break parsers: delimiters, escapes, limits of integer types, odd Unicode.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "\"", "{", "}", "[", "]", ":", ",", "=", "/", "..", "../", "*", "?", "%", "%ff", "%00",
    "\\", "\n", "\r\n", " ", "\t", "\0", "-1", "0", "1e309", "-0", "1.5", "NaN", "true",
    "null", "18446744073709551615", "9223372036854775808", "-9223372036854775809",
    "9223372036854775807", "-9223372036854775808", "4611686018427387904", "2147483648",
    "4294967295", "µs", "é", "\u{feff}", "\u{10ffff}", "ib", "GiB", ".wh.", "v1.44", "+",
    "&", "?", "#", "0x", "0o", "0b", "'", "\"\"", "{}", "[]", "\\u0000", "\\ud800",
];

/// Numbers at the edges of the integer types and of what doubling or scaling them overflows.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "4294967295",
    "4294967296",
    "2147483648",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "1e300",
    "99999999999",
];

/// Tokens worth splicing in: the seeds' words and punctuation, and values that break parsers.
fn dictionary(seeds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut set: BTreeSet<Vec<u8>> = BTreeSet::new();
    for s in seeds {
        for w in s.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')) {
            if !w.is_empty() && w.len() <= 32 {
                set.insert(w.to_vec());
            }
        }
    }
    for t in TOKENS {
        set.insert(t.as_bytes().to_vec());
    }
    set.into_iter().collect()
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, dict: &[Vec<u8>], pool: &[Vec<u8>], max: usize) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 | 3 => {
                let t = &dict[rng.below(dict.len())];
                let i = rng.below(len + 1);
                input.splice(i..i, t.iter().copied());
            }
            4 if len > 0 => {
                let t = &dict[rng.below(dict.len())];
                let i = rng.below(len);
                let end = (i + t.len()).min(len);
                input.splice(i..end, t.iter().copied());
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                input.drain(i..i + n);
            }
            6 if len > 0 => {
                // Repeat a slice many times: long names, deep nesting, many entries.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                let piece = input[i..i + n].to_vec();
                let most = if rng.chance(8) { 2000 } else { 8 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    input.splice(i..i, piece.iter().copied());
                    if input.len() > max {
                        break;
                    }
                }
            }
            7 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a);
                    let i = rng.below(len + 1);
                    input.splice(i..i, other[a..=b.min(other.len() - 1)].iter().copied());
                }
            }
            8 if len > 0 => input.truncate(rng.below(len)),
            9 if rng.chance(2) => {
                // Swap a whole decimal number for a limit value: overflow hunting that keeps
                // the JSON (or flag syntax) around it valid.
                let from = rng.below(len + 1);
                if let Some(start) = input[from..].iter().position(u8::is_ascii_digit) {
                    let start = from + start;
                    let end = input[start..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(input.len(), |n| start + n);
                    let n = NUMBERS[rng.below(NUMBERS.len())];
                    input.splice(start..end, n.bytes());
                }
            }
            _ => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
        }
    }
    input.truncate(max);
}

fn fuzz(opts: &Opts, f: fn(&[u8])) -> ExitCode {
    install_hook();
    let dir = opts.artifacts.join(&opts.target);
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("wharf-fuzz: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let current_path = dir.join("current");
    let current = match fs::File::create(&current_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wharf-fuzz: {}: {e}", current_path.display());
            return ExitCode::FAILURE;
        }
    };
    let seeds = wharf_fuzz::seeds(&opts.target);
    let dict = dictionary(&seeds);
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut rng = Rng(opts.seed | 1);

    // The watchdog: the millisecond (since `start`) the current execution began, 0 between.
    let start = Instant::now();
    let busy_since = Arc::new(AtomicU64::new(0));
    {
        let busy = Arc::clone(&busy_since);
        let hang = Duration::from_secs(opts.hang_secs);
        let target = opts.target.clone();
        let path = current_path.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let since = busy.load(Ordering::Relaxed);
            let now = start.elapsed().as_millis() as u64;
            if since != 0 && now.saturating_sub(since) > hang.as_millis() as u64 {
                println!(
                    "target={target} HANG: one input ran over {}s; it is in {}",
                    hang.as_secs(),
                    path.display()
                );
                let _ = std::io::stdout().flush();
                std::process::exit(3);
            }
        });
    }

    let deadline = Duration::from_secs(opts.seconds);
    let mut execs: u64 = 0;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut findings = 0u64;
    let mut slowest = Duration::ZERO;
    let mut input = Vec::new();
    while start.elapsed() < deadline {
        // Every input is a seed or a recent input, mutated; every seed also runs as is once.
        if (execs as usize) < seeds.len() {
            input.clone_from(&seeds[execs as usize]);
        } else {
            input.clone_from(&pool[rng.below(pool.len())]);
            mutate(&mut rng, &mut input, &dict, &pool, opts.max_len);
        }
        let _ = current.set_len(0);
        let _ = current.write_all_at(&input, 0);
        busy_since.store(start.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| f(&input)));
        let took = t.elapsed();
        busy_since.store(0, Ordering::Relaxed);
        execs += 1;
        slowest = slowest.max(took);
        let finding = match result {
            Err(_) => Some(format!("PANIC {}", take_panic())),
            Ok(()) if took > Duration::from_millis(opts.slow_ms) => Some(format!(
                "SLOW {}ms on a {}-byte input",
                took.as_millis(),
                input.len()
            )),
            Ok(()) => None,
        };
        if let Some(what) = finding {
            let key = what.split(" on a ").next().unwrap_or(&what).to_string();
            if seen.insert(key) {
                findings += 1;
                let path = dir.join(format!("finding-{findings}"));
                let _ = fs::write(&path, &input);
                println!("target={} {what} (input: {})", opts.target, path.display());
            }
        }
        // A small rolling pool, so mutations stack up across executions.
        if rng.chance(16) {
            if pool.len() < 256 {
                pool.push(input.clone());
            } else {
                let i = seeds.len() + rng.below(256 - seeds.len().min(255));
                if i < pool.len() {
                    pool[i] = input.clone();
                }
            }
        }
    }
    let _ = fs::remove_file(&current_path);
    let _ = fs::remove_dir(&dir);
    println!(
        "target={} execs={execs} seconds={} execs_per_sec={} slowest_ms={} findings={findings} seed={}",
        opts.target,
        opts.seconds,
        execs / opts.seconds.max(1),
        slowest.as_millis(),
        opts.seed
    );
    if findings > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
