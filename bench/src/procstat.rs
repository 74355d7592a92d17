//! What a server process costs, read from `/proc/<pid>`: CPU time (all threads) and
//! resident memory. CPU per delivery is the figure that does not depend on how fast the
//! load generator is, which matters when both share two cores.

use std::fs;
use std::io;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far (user + system), in nanoseconds.
    pub cpu_ns: u64,
    /// The user-space part of it (the process's own code and libraries, no syscalls):
    /// what a server's code costs, apart from how many writes the kernel was asked for.
    pub user_ns: u64,
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
    /// CPU time of the process's live threads as the scheduler counts it
    /// (`/proc/<pid>/task/*/schedstat`, first field): user + system in nanoseconds,
    /// where `cpu_ns` moves in 10 ms ticks (a short run is a few ticks); threads that
    /// exited in between are missed. `None` where the kernel has no schedstat.
    pub run_ns: Option<u64>,
}

/// Reads CPU time from `/proc/<pid>/stat` (fields 14 and 15, utime and stime, in clock
/// ticks of 10 ms) and RSS from `/proc/<pid>/status`.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("unexpected /proc/<pid>/stat format"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3; utime is field 14, stime field 15.
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("missing utime/stime in /proc/<pid>/stat"))
    };
    let tick_ns = 1_000_000_000 / clock_ticks_per_second();
    let cpu_ns = (ticks(14)? + ticks(15)?) * tick_ns;
    let user_ns = ticks(14)? * tick_ns;

    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    Ok(Sample {
        cpu_ns,
        user_ns,
        rss_bytes: rss_kib * 1024,
        run_ns: run_ns(pid),
    })
}

/// The sum of the first field of `/proc/<pid>/task/*/schedstat` (time on a CPU, ns).
fn run_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let mut path = task.ok()?.path();
        path.push("schedstat");
        // A thread may end between the listing and the read: it no longer counts.
        let Ok(line) = fs::read_to_string(&path) else {
            continue;
        };
        total += line.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Linux reports stat times in USER_HZ, which is 100 on every mainstream architecture.
fn clock_ticks_per_second() -> u64 {
    100
}

/// Readings of several processes, summed.
pub fn sample_all(pids: &[u32]) -> io::Result<Sample> {
    let mut total = Sample {
        cpu_ns: 0,
        user_ns: 0,
        rss_bytes: 0,
        run_ns: Some(0),
    };
    for pid in pids {
        let one = sample(*pid)?;
        total.cpu_ns += one.cpu_ns;
        total.user_ns += one.user_ns;
        total.rss_bytes += one.rss_bytes;
        total.run_ns = total.run_ns.zip(one.run_ns).map(|(a, b)| a + b);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        // This test has run for a while: the scheduler has counted some of it.
        assert!(me.run_ns.unwrap_or(1) > 0);
    }
}
