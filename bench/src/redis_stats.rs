//! What Redis did during a run, from its `INFO` (read over a plain TCP connection, so the
//! tool needs no Redis client): commands processed (including those run inside
//! scripts), script calls, and read and write events (each a syscall on Redis's side,
//! roughly a round trip of one client). Divided by the calls of a run, these are the
//! figures that do not depend on how busy the machine is.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::Serialize;

/// Counters of one `INFO` reading.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    counters: HashMap<String, u64>,
    /// `used_cpu_sys` + `used_cpu_user` of `INFO cpu`, in seconds (µs resolution).
    cpu_s: f64,
}

/// Per-call differences of two readings.
#[derive(Debug, Clone, Serialize)]
pub struct PerCall {
    /// Commands processed, including those run by scripts.
    pub commands: f64,
    /// Script calls (`EVALSHA` / `EVAL`): one round trip each.
    pub scripts: f64,
    /// `PUBLISH` commands, from clients or scripts.
    pub publishes: f64,
    /// Read events: requests (or pipelines) Redis read from clients.
    pub reads: f64,
    /// Write events: replies and pub/sub deliveries Redis wrote to clients.
    pub writes: f64,
    /// Redis's CPU (`INFO cpu`: `used_cpu_sys` + `used_cpu_user`, all its threads), in µs.
    pub cpu_us: f64,
    /// Calls of each command (`INFO commandstats`, those inside scripts included; the
    /// readings' own `INFO` left out), those that moved.
    pub by_command: BTreeMap<String, f64>,
}

/// Reads `INFO stats`, `INFO cpu` and `INFO commandstats` of the Redis at `addr` (`host:port`).
pub fn read(addr: &str) -> Result<Reading, String> {
    let mut stream = TcpStream::connect(addr).map_err(|err| format!("redis {addr}: {err}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|err| err.to_string())?;
    stream
        .write_all(b"INFO all\r\n")
        .map_err(|err| format!("redis {addr}: {err}"))?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|err| format!("redis {addr}: {err}"))?;
    let length: usize = header
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("redis {addr}: unexpected INFO reply {header:?}"))?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|err| format!("redis {addr}: {err}"))?;
    Ok(parse(&String::from_utf8_lossy(&body)))
}

/// The counters of an `INFO` reply's text.
fn parse(text: &str) -> Reading {
    let mut counters = HashMap::new();
    let mut cpu_s = 0.0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if let Some(command) = key.strip_prefix("cmdstat_") {
            // Redis 7 names subcommands `cmdstat_client|setname`: kept as they are.
            // cmdstat_publish:calls=12,usec=…
            let calls = value
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|n| n.parse().ok());
            if let Some(calls) = calls {
                counters.insert(format!("cmd:{command}"), calls);
            }
        } else if key == "used_cpu_sys" || key == "used_cpu_user" {
            cpu_s += value.trim().parse::<f64>().unwrap_or(0.0);
        } else if let Ok(number) = value.trim().parse() {
            counters.insert(key.to_owned(), number);
        }
    }
    Reading { counters, cpu_s }
}

impl PerCall {
    /// The commands that moved, `name count` with `digits` decimals, comma-separated.
    pub fn commands_line(&self, digits: usize) -> String {
        let commands: Vec<String> = self
            .by_command
            .iter()
            .map(|(name, n)| format!("{name} {n:.digits$}"))
            .collect();
        commands.join(", ")
    }
}

impl Reading {
    fn get(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// What happened between `self` and `later`, per call of `calls`.
    pub fn per_call(&self, later: &Reading, calls: u64) -> PerCall {
        let calls = calls.max(1) as f64;
        let diff = |key: &str| later.get(key).saturating_sub(self.get(key)) as f64 / calls;
        let by_command = later
            .counters
            .keys()
            .filter_map(|key| key.strip_prefix("cmd:"))
            .filter(|command| *command != "info")
            .map(|command| (command.to_owned(), diff(&format!("cmd:{command}"))))
            .filter(|(_, per_call)| *per_call > 0.0)
            .collect();
        PerCall {
            // INFO itself is one command and one read/write; negligible.
            commands: diff("total_commands_processed"),
            scripts: diff("cmd:evalsha") + diff("cmd:eval"),
            publishes: diff("cmd:publish"),
            reads: diff("total_reads_processed"),
            writes: diff("total_writes_processed"),
            cpu_us: (later.cpu_s - self.cpu_s).max(0.0) * 1e6 / calls,
            by_command,
        }
    }
}

/// What the Redis servers of a run (one Redis, or every master of a Redis Cluster) did
/// per call, node by node, and over all of them: the busiest node's CPU (what bounds a
/// hot channel or route) and the sum (what the work costs in all).
#[derive(Debug, Clone, Serialize)]
pub struct Nodes {
    /// Each node's figures, in the order given (`host:port`, per call).
    pub nodes: Vec<(String, PerCall)>,
    /// The busiest node's CPU per call, in µs.
    pub cpu_us_max: f64,
    /// All nodes' CPU per call, in µs.
    pub cpu_us_sum: f64,
    /// Commands per call over all nodes (those inside scripts included).
    pub commands_sum: f64,
    /// Script calls per call over all nodes.
    pub scripts_sum: f64,
    /// Read / write events per call over all nodes.
    pub reads_sum: f64,
    pub writes_sum: f64,
}

/// Readings of every node in `addrs`, in order.
pub fn read_nodes(addrs: &[String]) -> Result<Vec<Reading>, String> {
    addrs.iter().map(|addr| read(addr)).collect()
}

impl Nodes {
    /// The differences of two readings of the same nodes, per call of `calls`.
    pub fn per_call(addrs: &[String], before: &[Reading], after: &[Reading], calls: u64) -> Nodes {
        let nodes: Vec<(String, PerCall)> = addrs
            .iter()
            .zip(before.iter().zip(after))
            .map(|(addr, (before, after))| (addr.clone(), before.per_call(after, calls)))
            .collect();
        let sum = |field: fn(&PerCall) -> f64| nodes.iter().map(|(_, n)| field(n)).sum::<f64>();
        Nodes {
            cpu_us_max: nodes.iter().map(|(_, n)| n.cpu_us).fold(0.0, f64::max),
            cpu_us_sum: sum(|n| n.cpu_us),
            commands_sum: sum(|n| n.commands),
            scripts_sum: sum(|n| n.scripts),
            reads_sum: sum(|n| n.reads),
            writes_sum: sum(|n| n.writes),
            nodes,
        }
    }

    /// Lines for the report: the sums, then one line per node.
    pub fn print(&self, per: &str) {
        println!(
            "  redis per {per}, {} node(s): cpu {:.2} µs (busiest node {:.2} µs), {:.2} commands              (incl. inside scripts), {:.3} script calls, {:.3} reads, {:.3} writes",
            self.nodes.len(),
            self.cpu_us_sum,
            self.cpu_us_max,
            self.commands_sum,
            self.scripts_sum,
            self.reads_sum,
            self.writes_sum
        );
        if self.nodes.len() > 1 {
            for (addr, node) in &self.nodes {
                println!(
                    "    {addr}: cpu {:.2} µs, {:.2} commands ({})",
                    node.cpu_us,
                    node.commands,
                    node.commands_line(3)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_counts_commands_cpu_and_events() {
        let before = parse(
            "# Stats\r\ntotal_commands_processed:10\r\ntotal_reads_processed:4\r\n\
             # CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.500000\r\n\
             # Commandstats\r\ncmdstat_publish:calls=2,usec=4,usec_per_call=2.00\r\n\
             cmdstat_info:calls=1,usec=9,usec_per_call=9.00\r\n",
        );
        let after = parse(
            "total_commands_processed:22\r\ntotal_reads_processed:6\r\n\
             used_cpu_sys:1.500010\r\nused_cpu_user:0.500010\r\n\
             cmdstat_publish:calls=4,usec=8,usec_per_call=2.00\r\n\
             cmdstat_evalsha:calls=2,usec=8,usec_per_call=4.00\r\n\
             cmdstat_info:calls=2,usec=18,usec_per_call=9.00\r\n",
        );
        let per_call = before.per_call(&after, 2);
        assert_eq!(per_call.commands, 6.0);
        assert_eq!(per_call.scripts, 1.0);
        assert_eq!(per_call.publishes, 1.0);
        assert_eq!(per_call.reads, 1.0);
        assert!((per_call.cpu_us - 10.0).abs() < 1e-6, "{}", per_call.cpu_us);
        let commands: Vec<_> = per_call.by_command.keys().map(String::as_str).collect();
        assert_eq!(commands, ["evalsha", "publish"]);
    }

    #[test]
    fn nodes_give_the_busiest_and_the_sum() {
        let reading = |cpu: f64, commands: u64| {
            parse(&format!(
                "total_commands_processed:{commands}\r\nused_cpu_sys:{cpu}\r\nused_cpu_user:0\r\n"
            ))
        };
        let addrs = ["a:1".to_owned(), "b:2".to_owned()];
        let before = [reading(1.0, 10), reading(2.0, 10)];
        let after = [reading(1.000_04, 30), reading(2.000_01, 14)];
        let nodes = Nodes::per_call(&addrs, &before, &after, 2);
        assert!(
            (nodes.cpu_us_max - 20.0).abs() < 1e-3,
            "{}",
            nodes.cpu_us_max
        );
        assert!(
            (nodes.cpu_us_sum - 25.0).abs() < 1e-3,
            "{}",
            nodes.cpu_us_sum
        );
        assert_eq!(nodes.commands_sum, 12.0);
        assert_eq!(nodes.nodes[1].0, "b:2");
    }
}
