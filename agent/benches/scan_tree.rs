//! Scan throughput against baselines measured in the same run: a large generated tree (text,
//! source code, binaries, labeled OOXML documents and PDFs) is walked by a bare `walkdir` + `lstat`
//! loop (the floor any scan must pay), listed by `find` and `rg --files` when they are installed,
//! read in full and checksummed (what a content scanner or file-integrity monitor pays), and
//! scanned by `infoledger_agent::scan::scan`; the table reports each median and its ratios.
//!
//! No absolute time is asserted anywhere: machines differ, ratios measured side by side on a warm
//! cache do not (much). What the bench does check is that every contender saw the same files, so a
//! fast number can never come from doing less work; `--max-ratio` turns the scan/walk ratio into a
//! pass/fail check.
//!
//! Run: `cargo bench -p infoledger-agent --bench scan_tree [-- --files 100000 --runs 3]`.
//! Without `--bench` (as `cargo test --benches` runs it) it builds a small tree and runs once, as a
//! smoke test of the bench itself.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use infoledger_agent::scan::{self, ScanOptions, Summary};
use infoledger_policies::Bundle;
use walkdir::WalkDir;

mod tree;

use tree::{bench_bundle, prepare_tree, Layout, UNRELATED_ASSETS};

const USAGE: &str = "\
usage: cargo bench -p infoledger-agent --bench scan_tree [-- OPTIONS]

options:
  --files N        files in the generated tree (default 100000)
  --per-dir N      files per leaf folder (default 40)
  --runs N         timed runs of each measurement; the median is reported (default 3)
  --regenerate     rebuild the tree even if one of the same shape exists
  --max-ratio R    exit 1 when the scan's median exceeds R times the walk floor's
  --help           print this help

The tree is kept in target/bench-tree/ and reused by later runs of the same --files and --per-dir.";

/// What to run, from the command line.
#[derive(Debug, Clone)]
struct Settings {
    files: usize,
    per_dir: usize,
    runs: usize,
    regenerate: bool,
    max_ratio: Option<f64>,
    /// `cargo bench` passes `--bench`; without it the binary runs as a quick smoke test.
    measuring: bool,
}

/// Limits that keep a mistyped argument from filling the disk or running for hours.
const MAX_FILES: usize = 5_000_000;
const MAX_RUNS: usize = 99;

impl Settings {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Settings>> {
        let args: Vec<String> = args.into_iter().collect();
        let measuring = args.iter().any(|a| a == "--bench");
        let mut s = Settings {
            files: if measuring { 100_000 } else { 2_000 },
            per_dir: 40,
            runs: if measuring { 3 } else { 1 },
            regenerate: false,
            max_ratio: None,
            measuring,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .with_context(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--bench" => {}
                "--help" | "-h" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                "--regenerate" => s.regenerate = true,
                "--files" => s.files = parse_count("--files", &value("--files")?, MAX_FILES)?,
                "--per-dir" => s.per_dir = parse_count("--per-dir", &value("--per-dir")?, 10_000)?,
                "--runs" => s.runs = parse_count("--runs", &value("--runs")?, MAX_RUNS)?,
                "--max-ratio" => {
                    let v = value("--max-ratio")?;
                    let r: f64 = v
                        .parse()
                        .ok()
                        .filter(|r: &f64| r.is_finite() && *r > 0.0)
                        .with_context(|| format!("--max-ratio: `{v}` is not a positive number"))?;
                    s.max_ratio = Some(r);
                }
                // `cargo test --benches` may pass libtest's flags and filters; they mean nothing
                // here, and failing on them would break the workspace's test command.
                _ if !measuring => eprintln!("note: ignoring argument `{arg}` in test mode"),
                _ => bail!("unknown argument `{arg}`\n\n{USAGE}"),
            }
        }
        Ok(Some(s))
    }
}

fn parse_count(name: &str, v: &str, max: usize) -> Result<usize> {
    match v.replace('_', "").parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => bail!("{name}: `{v}` is not a number between 1 and {max}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// What the floor walk saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WalkCounts {
    files: u64,
    dirs: u64,
    bytes: u64,
}

/// The floor: read every folder and `lstat` every entry, nothing else.
fn walk_floor(root: &Path) -> Result<WalkCounts> {
    let mut counts = WalkCounts {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry?;
        // With follow_links(false) this is an lstat.
        let meta = entry.metadata()?;
        if meta.is_file() {
            counts.files += 1;
            counts.bytes += meta.len();
        } else if meta.is_dir() {
            counts.dirs += 1;
        }
    }
    Ok(counts)
}

/// Reads every byte of every file and checksums it (CRC-32), one thread: the least a content
/// scanner or a file-integrity monitor hashing files must pay.
fn read_all(root: &Path) -> Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let mut crc = flate2::Crc::new();
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let mut f = File::open(entry.path())?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            bytes += n as u64;
        }
        files += 1;
    }
    // Keep the checksum observable so the reads cannot be optimised away.
    std::hint::black_box(crc.sum());
    Ok((files, bytes))
}

/// An external tool listing every file, one per line.
#[derive(Debug, Clone)]
struct Lister {
    name: &'static str,
    program: &'static str,
    args: Vec<String>,
}

impl Lister {
    fn for_tree(tree: &Path) -> Vec<Lister> {
        let tree = tree.to_string_lossy().into_owned();
        vec![
            Lister {
                name: "find -type f",
                program: "find",
                args: vec![tree.clone(), "-type".into(), "f".into()],
            },
            Lister {
                // Ignore rules and hidden-file skipping off, so it lists what the others see.
                name: "rg --files",
                program: "rg",
                args: vec![
                    "--files".into(),
                    "--no-ignore".into(),
                    "--hidden".into(),
                    tree,
                ],
            },
        ]
    }

    /// Runs it and counts the lines it prints; `None` when the program is not installed.
    fn run(&self) -> Result<Option<u64>> {
        let mut child = match Command::new(self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot run {}", self.program)),
        };
        let mut lines = 0;
        if let Some(mut out) = child.stdout.take() {
            let mut buf = vec![0; 64 * 1024];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("cannot read its output"),
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "`{} {}` failed: {status}",
                self.program,
                self.args.join(" ")
            );
        }
        Ok(Some(lines))
    }
}

/// One row of the table.
#[derive(Debug)]
enum Contender {
    Walk,
    External(Lister),
    ReadAll,
    Scan,
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Walk => "walk floor (lstat)",
            Contender::External(l) => l.name,
            Contender::ReadAll => "read+crc32 all bytes",
            Contender::Scan => "infoledger scan",
        }
    }
}

/// Everything a timed run needs, and what the warm-up established.
#[derive(Debug)]
struct Workload {
    tree: PathBuf,
    bundle: Bundle,
    options: ScanOptions,
    walk: WalkCounts,
    scan: Summary,
    files_with_findings: usize,
}

impl Workload {
    /// Runs a contender once; checks it saw every file, so no number comes from doing less.
    fn run(&self, contender: &Contender) -> Result<Duration> {
        let started = Instant::now();
        match contender {
            Contender::Walk => {
                let counts = walk_floor(&self.tree)?;
                let elapsed = started.elapsed();
                ensure_same(contender, counts.files, self.walk.files)?;
                Ok(elapsed)
            }
            Contender::External(lister) => {
                let files = lister
                    .run()?
                    .with_context(|| format!("{} disappeared during the run", lister.program))?;
                let elapsed = started.elapsed();
                ensure_same(contender, files, self.walk.files)?;
                Ok(elapsed)
            }
            Contender::ReadAll => {
                let (files, bytes) = read_all(&self.tree)?;
                let elapsed = started.elapsed();
                ensure_same(contender, files, self.walk.files)?;
                if bytes != self.walk.bytes {
                    bail!(
                        "read {bytes} bytes where the walk counted {}",
                        self.walk.bytes
                    );
                }
                Ok(elapsed)
            }
            Contender::Scan => {
                let report = scan::scan(&self.bundle, &self.options)?;
                let elapsed = started.elapsed();
                let summary = Summary {
                    elapsed_ms: 0,
                    ..report.summary
                };
                if summary != self.scan {
                    bail!(
                        "the scan's counters changed between runs: {summary:?} after {:?}",
                        self.scan
                    );
                }
                Ok(elapsed)
            }
        }
    }
}

fn ensure_same(contender: &Contender, saw: u64, expected: u64) -> Result<()> {
    if saw != expected {
        bail!(
            "{} saw {saw} files where the walk saw {expected}; the comparison would be unfair",
            contender.name()
        );
    }
    Ok(())
}

/// The untimed warm-up: fills the caches and fixes the counts every timed run must reproduce.
fn warm_up(
    tree: PathBuf,
    bundle: Bundle,
    expected_files: u64,
) -> Result<(Workload, Vec<Contender>)> {
    let walk = walk_floor(&tree)?;
    if walk.files != expected_files {
        bail!(
            "{} holds {} files, {expected_files} expected; rerun with --regenerate",
            tree.display(),
            walk.files
        );
    }
    let options = ScanOptions {
        roots: vec![tree.clone()],
        exclude: Vec::new(),
        // Fixed, so findings (hosts, deadlines) are the same on every machine and every day.
        host: "bench-host".to_string(),
        threads: None,
        now: Utc
            .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
            .single()
            .context("fixed bench date")?,
    };
    let report = scan::scan(&bundle, &options)?;
    let scan = Summary {
        elapsed_ms: 0,
        ..report.summary
    };
    if scan.files != walk.files || scan.unreadable != 0 || scan.skipped != 0 {
        bail!(
            "the scan inspected {} files ({} skipped, {} unreadable) where the walk saw {}",
            scan.files,
            scan.skipped,
            scan.unreadable,
            walk.files
        );
    }
    if scan.findings == 0 {
        bail!("the scan found nothing: the bundle does not exercise evaluation");
    }
    let mut contenders = vec![Contender::Walk];
    let workload = Workload {
        tree,
        bundle,
        options,
        walk,
        scan,
        files_with_findings: report.results.len(),
    };
    for lister in Lister::for_tree(&workload.tree) {
        match lister.run()? {
            Some(files) => {
                let c = Contender::External(lister);
                ensure_same(&c, files, walk.files)?;
                contenders.push(c);
            }
            None => eprintln!("note: `{}` is not on PATH; skipped", lister.program),
        }
    }
    contenders.push(Contender::ReadAll);
    contenders.push(Contender::Scan);
    Ok((workload, contenders))
}

/// Median and range of a contender's timed runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Timing {
    fn of(samples: &mut [Duration]) -> Timing {
        samples.sort();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2
        };
        Timing {
            median,
            min: samples[0],
            max: samples[n - 1],
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn run(settings: &Settings) -> Result<ExitCode> {
    let layout = Layout {
        files: settings.files,
        per_dir: settings.per_dir,
    };
    let tree = prepare_tree(layout, settings.regenerate)?;
    let bundle = bench_bundle(&tree)?;
    if let Some(pattern) = bundle.policy.rules.forbidden.first_match(&tree.join("x")) {
        eprintln!(
            "warning: {} matches the forbidden location `{pattern}`; every labeled file becomes a finding",
            tree.display()
        );
    }
    eprintln!("warming up (one untimed pass of each)");
    let (workload, contenders) = warm_up(tree, bundle, settings.files as u64)?;

    // Interleaved, so that drift (another process, CPU frequency) spreads over all contenders.
    let mut samples: Vec<Vec<Duration>> = contenders.iter().map(|_| Vec::new()).collect();
    for r in 0..settings.runs {
        eprintln!("run {} of {}", r + 1, settings.runs);
        for (c, s) in contenders.iter().zip(&mut samples) {
            s.push(workload.run(c)?);
        }
    }
    let timings: Vec<Timing> = samples.iter_mut().map(|s| Timing::of(s)).collect();
    let floor = timings[0].median.as_secs_f64();

    let w = &workload;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scan_tree: {} files in {} folders, {:.1} MB; {} assets ({} in the tree); \
         {} findings in {} files",
        grouped(w.walk.files),
        grouped(w.walk.dirs),
        w.walk.bytes as f64 / 1e6,
        w.bundle.ledger.assets().len(),
        w.bundle.ledger.assets().len() - UNRELATED_ASSETS,
        grouped(w.scan.findings),
        grouped(w.files_with_findings as u64),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        out,
        "warm cache, one untimed warm-up, median of {} run{}, {cpus} CPU{}",
        settings.runs,
        if settings.runs == 1 { "" } else { "s" },
        if cpus == 1 { "" } else { "s" },
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| {:<20} | {:>10} | {:>19} | {:>11} | {:>8} |",
        "measurement", "median ms", "min..max ms", "files/s", "vs walk"
    );
    let _ = writeln!(
        out,
        "|{:-<22}|{:->12}|{:->21}|{:->13}|{:->10}|",
        ":", ":", ":", ":", ":"
    );
    for (c, t) in contenders.iter().zip(&timings) {
        let secs = t.median.as_secs_f64();
        let _ = writeln!(
            out,
            "| {:<20} | {:>10.1} | {:>19} | {:>11} | {:>7.2}x |",
            c.name(),
            ms(t.median),
            format!("{:.1}..{:.1}", ms(t.min), ms(t.max)),
            grouped((w.walk.files as f64 / secs) as u64),
            secs / floor,
        );
    }
    let _ = writeln!(
        out,
        "\nwalk floor: walkdir reading every folder and lstat-ing every entry, one thread. \
         find and rg only list names (file types come from readdir, no lstat), so they can beat it."
    );
    print!("{out}");
    if !settings.measuring {
        println!("\n(test mode: small tree, one run; `cargo bench` measures)");
    }

    let scan_secs = timings[timings.len() - 1].median.as_secs_f64();
    let median_of = |name: &str| {
        contenders
            .iter()
            .zip(&timings)
            .find(|(c, _)| c.name() == name)
            .map(|(_, t)| t.median.as_secs_f64())
    };
    println!();
    match median_of("rg --files") {
        Some(rg) => println!("scan / rg --files:          {:>6.2}x", scan_secs / rg),
        None => println!("scan / rg --files:          (rg not installed: apt-get install ripgrep)"),
    }
    println!("scan / walk floor:          {:>6.2}x", scan_secs / floor);
    if let Some(all) = median_of("read+crc32 all bytes") {
        println!(
            "read+crc32 all / scan:      {:>6.2}x faster than reading everything",
            all / scan_secs
        );
    }
    let ratio = scan_secs / floor;
    if let Some(max) = settings.max_ratio {
        if ratio > max {
            println!("\nFAIL: the scan took {ratio:.2}x the walk floor; at most {max:.2}x allowed");
            return Ok(ExitCode::FAILURE);
        }
        println!("\nok: the scan took {ratio:.2}x the walk floor (at most {max:.2}x allowed)");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
