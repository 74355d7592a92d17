//! Start-up and shutdown of the real `cometd` binary: a process that cannot start (a busy
//! port, a bad address, an unreadable or invalid config file, contradicting settings)
//! says why in one line on stderr and exits non-zero, never with a panic; one that
//! started stops cleanly however its stop signals come; and its settings are layered
//! flag > `COMET_*` variable > config file > default, with the demo actions only on
//! `--demo`, whose `site/sleep` ends before the action timeout.

#[path = "common/process.rs"]
mod process;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use process::{run_to_exit, Cometd, Exit};

const WITHIN: Duration = Duration::from_secs(30);

/// A config file of the test's own, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("startup-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("cannot write the config file");
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("the tmp dir is UTF-8")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The process failed with `code`, printed one line on stderr that holds `wanted`,
/// printed nothing on stdout (no "ready"), and did not panic.
fn assert_one_line_failure(exit: &Exit, code: i32, wanted: &str) {
    let all = format!("stdout: {:?}\nstderr: {:?}", exit.stdout, exit.stderr);
    assert_eq!(exit.status.code(), Some(code), "{all}");
    assert!(!exit.stderr.contains("panicked"), "{all}");
    assert!(!exit.stderr.contains("backtrace"), "{all}");
    assert_eq!(exit.stderr.lines().count(), 1, "one line: {all}");
    assert!(exit.stderr.starts_with("cometd: "), "{all}");
    assert!(exit.stderr.contains(wanted), "{all}");
    assert!(exit.stdout.is_empty(), "{all}");
}

#[test]
fn a_busy_port_is_one_line_and_exit_status_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("cannot bind a port to take");
    let addr = taken.local_addr().expect("a bound port").to_string();
    let exit = run_to_exit(&["--bind", &addr, "--demo"], WITHIN);
    assert_one_line_failure(&exit, 1, &format!("cannot listen on {addr}"));
    assert!(exit.stderr.contains("in use"), "{}", exit.stderr);
    // The same as a hub-less cluster member would start.
    let exit = run_to_exit(&["--bind", &addr, "--listen-actions", "false"], WITHIN);
    assert_one_line_failure(&exit, 1, &format!("cannot listen on {addr}"));
}

#[test]
fn a_bad_address_is_one_line_and_exit_status_1() {
    let exit = run_to_exit(&["--bind", "not an address"], WITHIN);
    assert_one_line_failure(&exit, 1, "cannot listen on not an address");
    let exit = run_to_exit(&["--bind", "127.0.0.1:99999"], WITHIN);
    assert_one_line_failure(&exit, 1, "cannot listen on 127.0.0.1:99999");
}

#[test]
fn a_config_file_that_cannot_be_read_or_is_invalid_is_one_line_and_exit_status_2() {
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("startup-no-such-file.toml");
    let exit = run_to_exit(&["--config", missing.to_str().unwrap()], WITHIN);
    assert_one_line_failure(&exit, 2, "cannot read the config file");

    let unknown = ConfigFile::new("unknown", "workers = 4\nrol = \"hub\"\n");
    let exit = run_to_exit(&["--config", unknown.path()], WITHIN);
    assert_one_line_failure(&exit, 2, "line 2: unknown field `rol`");

    let not_toml = ConfigFile::new("not-toml", "workers = = 4\n");
    let exit = run_to_exit(&["--config", not_toml.path()], WITHIN);
    assert_one_line_failure(&exit, 2, "line 1");
}

#[test]
fn bad_settings_are_one_line_and_a_non_zero_exit() {
    let exit = run_to_exit(&["--workers", "many"], WITHIN);
    assert_one_line_failure(&exit, 2, "--workers");
    let exit = run_to_exit(&["--role", "hub", "--listen-actions", "false"], WITHIN);
    assert_one_line_failure(&exit, 2, "role `hub` runs actions");
    let exit = run_to_exit(&["--bind", "127.0.0.1:0", "--origins", "nohost"], WITHIN);
    assert_one_line_failure(&exit, 1, "nohost");
    let exit = run_to_exit(
        &["--redis", "http://not-redis", "--bind", "127.0.0.1:0"],
        WITHIN,
    );
    assert_one_line_failure(&exit, 1, "http://not-redis");
}

#[test]
fn two_stop_signals_end_the_process_without_a_panic() {
    let mut cometd = Cometd::spawn("two-signals", &["--demo"]);
    cometd.terminate();
    cometd.terminate();
    let status = cometd
        .wait_exit(WITHIN)
        .expect("cometd did not stop after two SIGTERMs");
    let log = std::fs::read_to_string(&cometd.log).expect("the process log");
    assert!(
        !log.contains("panicked"),
        "log {}:\n{log}",
        cometd.log.display()
    );
    assert!(status.success(), "{status}; log {}", cometd.log.display());
}

#[test]
fn a_flag_beats_its_variable_which_beats_the_file_and_demo_actions_are_opt_in() {
    let file = ConfigFile::new("layers", "prefix = \"file:\"\nworkers = 3\ndemo = true\n");
    let plain = Cometd::spawn("plain", &[]);
    assert!(
        plain.ready_line.contains("prefix `comet:`"),
        "{}",
        plain.ready_line
    );
    assert!(
        plain.ready_line.contains("routes []"),
        "{}",
        plain.ready_line
    );

    let from_file = Cometd::spawn("file", &["--config", file.path()]);
    assert!(
        from_file.ready_line.contains("prefix `file:`"),
        "{}",
        from_file.ready_line
    );
    assert!(
        from_file.ready_line.contains("site/test"),
        "{}",
        from_file.ready_line
    );

    let env = [("COMET_PREFIX", "env:"), ("COMET_DEMO", "false")];
    let from_env = Cometd::spawn_with_env("env", &["--config", file.path()], &env);
    assert!(
        from_env.ready_line.contains("prefix `env:`"),
        "{}",
        from_env.ready_line
    );
    assert!(
        from_env.ready_line.contains("routes []"),
        "{}",
        from_env.ready_line
    );

    let flagged = Cometd::spawn_with_env(
        "flag",
        &["--config", file.path(), "--prefix", "flag:", "--demo"],
        &env,
    );
    assert!(
        flagged.ready_line.contains("prefix `flag:`"),
        "{}",
        flagged.ready_line
    );
    assert!(
        flagged.ready_line.contains("site/sleep"),
        "{}",
        flagged.ready_line
    );
}

#[tokio::test]
async fn the_demo_sleep_ends_before_the_action_timeout() {
    let cometd = Cometd::spawn("sleep", &["--demo", "--action-timeout-ms", "1000"]);
    let mut client = cometd.connect().await;
    let answer = client
        .call_and_wait("site/sleep", serde_json::json!({ "ms": 60_000 }), WITHIN)
        .await;
    // 90 % of the action timeout: an answer, not `timeout`.
    assert_eq!(answer["slept"], 900, "{answer}");
    assert_eq!(answer["node"], cometd.node.as_str(), "{answer}");
}

#[test]
fn listening_beyond_loopback_with_everything_open_is_said_loudly() {
    let open = Cometd::spawn("open-to-all", &["--bind", "0.0.0.0:0"]);
    assert!(
        open.logged()
            .contains("SECURITY: listening on 0.0.0.0:0 with no authentication"),
        "log {}",
        open.log.display()
    );
    let secured = Cometd::spawn(
        "secured",
        &[
            "--bind",
            "0.0.0.0:0",
            "--token-hmac-secret",
            "a secret of at least thirty-two bytes",
            "--anonymous",
            "false",
        ],
    );
    assert!(
        secured.ready_line.contains("HS256 tokens, anonymous false"),
        "{}",
        secured.ready_line
    );
    let local = Cometd::spawn("local", &[]);
    for quiet in [&secured, &local] {
        assert!(
            !quiet.logged().contains("SECURITY"),
            "log {}",
            quiet.log.display()
        );
    }
}
