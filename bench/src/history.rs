//! History and recovery (issue 13): what the command line names as a case, and how the
//! history fan-out is shown (the fan-out itself is `fanout.rs`'s, the recovery
//! `recover.rs`'s).

use std::str::FromStr;

use crate::fanout::Outcome;

/// One server and channel to measure: `LABEL,URL,PID,CHANNEL[,recover][,redis]`.
/// `recover`: subscribe with `{"recover":true}` (positions: `pub` frames); `redis`: the
/// server's hub is the Redis given by `--redis`/`--redis-pid`, whose counters are read.
#[derive(Debug, Clone)]
pub struct CaseSpec {
    /// The name in the table.
    pub label: String,
    /// The server's raw WebSocket endpoint.
    pub url: String,
    /// The server's pid.
    pub pid: u32,
    /// The channel (e.g. `feed:bench`, in a namespace with history).
    pub channel: String,
    /// Whether the subscribers ask for positions.
    pub recover: bool,
    /// Whether the server runs on the Redis whose counters are read.
    pub redis: bool,
}

/// The parts of a case `LABEL,URL,PID,CHANNEL[,flag…]`, each flag one of `flags`: label,
/// url, pid, channel, and the flags given.
pub fn case_parts<'a>(
    spec: &'a str,
    flags: &[&str],
) -> Result<(String, String, u32, String, Vec<&'a str>), String> {
    let parts: Vec<&str> = spec.split(',').collect();
    let [label, url, pid, channel, given @ ..] = parts.as_slice() else {
        return Err(format!(
            "a case is `LABEL,URL,PID,CHANNEL[,{}]`, not `{spec}`",
            flags.join("][,")
        ));
    };
    let pid = pid
        .parse()
        .map_err(|_| format!("`{pid}` is not a pid (in `{label}`)"))?;
    if let Some(other) = given.iter().find(|flag| !flags.contains(flag)) {
        return Err(format!(
            "`{other}`: a case's flags are {}",
            flags.join(" and ")
        ));
    }
    Ok((
        (*label).to_owned(),
        (*url).to_owned(),
        pid,
        (*channel).to_owned(),
        given.to_vec(),
    ))
}

impl FromStr for CaseSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<CaseSpec, String> {
        let (label, url, pid, channel, flags) = case_parts(spec, &["recover", "redis"])?;
        Ok(CaseSpec {
            label,
            url,
            pid,
            channel,
            recover: flags.contains(&"recover"),
            redis: flags.contains(&"redis"),
        })
    }
}

/// Prints, after the fan-out table, each case's CPU per delivery against the first
/// case's (history off) and what Redis did per publication.
pub fn print_fanout(outcomes: &[Outcome]) {
    let Some(first) = outcomes.first() else {
        return;
    };
    for o in outcomes.iter().skip(1) {
        if o.label.starts_with("baseline") {
            continue;
        }
        let ratio = o
            .sched_us_per_delivery
            .zip(first.sched_us_per_delivery)
            .map_or("-".into(), |(a, b)| format!("{:.2}×", a / b.max(1e-9)));
        println!(
            "{:<22} sched cpu per delivery {ratio} {}'s; {} out of order",
            o.label, first.label, o.out_of_order
        );
    }
    for o in outcomes {
        if let Some(redis) = &o.redis_per_publish {
            println!(
                "{:<22} redis per publish: {:.2} commands ({}), {:.3} scripts, {:.3} reads, \
                 {:.3} writes, cpu {:.2} µs (INFO), {} µs (sched)",
                o.label,
                redis.commands,
                redis.commands_line(2),
                redis.scripts,
                redis.reads,
                redis.writes,
                redis.cpu_us,
                o.redis_sched_us_per_publish
                    .map_or("-".into(), |cpu| format!("{cpu:.2}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_case() {
        let case: CaseSpec = "history,ws://127.0.0.1:1/comet/websocket,42,feed:bench,recover,redis"
            .parse()
            .unwrap();
        assert_eq!(case.label, "history");
        assert_eq!(case.pid, 42);
        assert_eq!(case.channel, "feed:bench");
        assert!(case.recover && case.redis);
        let plain: CaseSpec = "plain,ws://127.0.0.1:1/comet/websocket,7,bench"
            .parse()
            .unwrap();
        assert!(!plain.recover && !plain.redis);
        assert!("plain,ws://x,7".parse::<CaseSpec>().is_err());
        assert!("plain,ws://x,7,bench,fast".parse::<CaseSpec>().is_err());
    }
}
