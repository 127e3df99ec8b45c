//! End to end, as the README tells a user: `cargo cqrs new` with each store, the generated
//! crate's tests, `cargo run` serving on 127.0.0.1 (SQLite), `add` of each kind followed by the
//! tests again, `schema export` and `schema check`, an incompatible event change the check
//! refuses and the version bump with an upcaster it accepts; services with a bus run against a
//! NATS server and a tansu Kafka broker (`cqrs_tests::brokers`). Builds share `target/e2e`.

mod work;

use work::WorkDir;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cqrs_tests::brokers::{Broker, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-cqrs");

fn repo() -> PathBuf {
    manifest_dir().parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    repo().join("target/e2e")
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        // Line tables only, as the workspace builds: full debug info of every generated
        // service would take gigabytes of `target/e2e`.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .output()
        .unwrap();
    println!(
        "$ {program} {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn cqrs(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["cqrs"];
    all.extend(args);
    run(dir, BIN, &all)
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(dir, &cargo, args)
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `cargo cqrs new <name> --store <store> [extra...]` in `parent`, with the workspace's lock
/// file.
fn generate(parent: &Path, name: &str, store: &str) -> PathBuf {
    generate_with(parent, name, &["--store", store])
}

fn generate_with(parent: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let mut args = vec!["new", name];
    args.extend(flags);
    let out = ok(&cqrs(parent, &args));
    assert!(out.contains(&format!("added: {name}/src/task.rs")), "{out}");
    assert!(out.contains(&format!("created `{name}`")), "{out}");
    let dir = parent.join(name);
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn postgres_and_memory_services_build_and_pass_their_tests() {
    let parent = WorkDir::new("postgres-and-memory");
    for store in ["postgres", "memory"] {
        let dir = generate(parent.path(), &format!("svc-{store}"), store);
        // A process manager, its runner on the store's own target (or in memory).
        ok(&cqrs(
            &dir,
            &["add", "process-manager", "Reminders", "--to", "task"],
        ));
        let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
        let target = match store {
            "memory" => "cqrs_runtime::projection::MemoryTarget::new()",
            _ => "store.projection_target()",
        };
        assert!(main.contains(target), "{main}");
        let tests = ok(&cargo(&dir, &["test"]));
        assert!(!tests.contains("FAILED"));
        assert!(String::from_utf8_lossy(&cargo(&dir, &["test"]).stdout).contains("9 passed"));
        assert!(tests.contains("test it_runs_on_a_store ... ok"), "{tests}");
    }
}

/// A service with a bus, as generated: its tests pass, and run against a real broker it
/// publishes a command's event through the outbox and consumes it back (`GET /activity`), then
/// stops on Ctrl-C, saying what it consumed.
#[test]
fn services_with_a_bus_publish_and_consume_their_events() {
    let parent = WorkDir::new("bus-services");
    for (store, kind, feature) in [
        ("sqlite", Kind::Kafka, "\"kafka\""),
        ("memory", Kind::Nats, "\"nats\""),
    ] {
        let (bus, url_var) = match kind {
            Kind::Kafka => ("kafka", "KAFKA_BROKERS"),
            Kind::Nats => ("nats", "NATS_URL"),
        };
        let name = format!("svc-{bus}");
        let dir = generate_with(parent.path(), &name, &["--store", store, "--bus", bus]);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(feature), "{manifest}");
        let tests = ok(&cargo(&dir, &["test"]));
        assert!(!tests.contains("FAILED"));
        ok(&cargo(&dir, &["build"]));
        let Some(broker) = Broker::start(kind, "generated services with a bus") else {
            continue;
        };
        let service = Service::start(&dir, &name, &[(url_var, broker.address())]);
        let created = service.request("POST", "/tasks/t-1/commands", CREATE);
        assert!(created.starts_with("HTTP/1.1 200"), "{created}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut activity = service.request("GET", "/activity", "");
        while !activity.ends_with(r#"{"Created":1}"#) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            activity = service.request("GET", "/activity", "");
        }
        assert!(
            activity.ends_with(r#"{"Created":1}"#),
            "{name}: the event did not come back from {bus}: {activity}"
        );
        let said = service.interrupt();
        assert!(
            said.contains("consumed from the bus: SubscriberStats { processed: 1, duplicates: 0,"),
            "{name}: {said}"
        );
    }
}

const CREATE: &str = r#"{"Create": {"title": "Ship it"}}"#;

/// A generated service's binary, running on a free port.
struct Service {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    address: String,
}

impl Service {
    /// Starts `target/e2e/debug/<name>` in `dir` and waits for its address.
    /// Its logs (stderr) go to `service.log` in `dir`.
    fn start(dir: &Path, name: &str, env: &[(&str, &str)]) -> Service {
        let log = std::fs::File::create(dir.join("service.log")).unwrap();
        let mut child = Command::new(target_dir().join("debug").join(name))
            .current_dir(dir)
            .env("PORT", "0")
            .env("DATABASE_PATH", dir.join("events.db"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the service printed its address")
                .unwrap();
            if let Some(address) = line.strip_prefix("listening on http://") {
                break address.to_owned();
            }
        };
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        Service {
            child,
            lines,
            address,
        }
    }

    /// One HTTP/1.1 request; the whole response.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        request(&self.address, method, path, body).unwrap()
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.lines.by_ref().for_each(drop);
        self.child.wait().unwrap()
    }

    /// Ctrl-C (SIGINT), then what the service printed until it exited, which must be cleanly.
    fn interrupt(mut self) -> String {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid}");
        let said: Vec<String> = self.lines.by_ref().map(Result::unwrap).collect();
        let status = self.child.wait().unwrap();
        let said = said.join("\n");
        assert!(status.success(), "{status}: {said}");
        said
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// One HTTP/1.1 request to `address`; the whole response, or the I/O error (the service
/// stopped).
fn request(address: &str, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The generated SQLite service as operations see it: `/metrics` counts the commands, SIGTERM
/// during a stream of commands exits 0 with every acknowledged one stored, and a poison event
/// makes `/health/ready` answer 503 and the log say, at error level, which event stopped the
/// read model.
fn production_checks(dir: &Path) {
    use cqrs_runtime::EventStore;
    use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let open = || {
        runtime
            .block_on(SqliteStore::open(SqliteConfig::new(dir.join("events.db"))))
            .unwrap()
    };
    let service = Service::start(dir, "svc-sqlite", &[("LOG_FORMAT", "json")]);
    for i in 0..3 {
        let created = service.request("POST", &format!("/tasks/m-{i}/commands"), CREATE);
        assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    }
    // The caller's trace context is kept with the events.
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = raw_request_with(
        &service.address,
        "POST",
        "/tasks/traced/commands",
        &[
            ("Content-Type", "application/json"),
            ("traceparent", parent),
        ],
        CREATE,
    );
    assert!(traced.starts_with("HTTP/1.1 200"), "{traced}");
    let stored = runtime
        .block_on(open().read_stream("task", "traced", 0, 1))
        .unwrap();
    assert_eq!(stored[0].metadata.traceparent(), Some(parent));
    let metrics = service.request("GET", "/metrics", "");
    assert!(
        metrics.contains(
            r#"cqrs_commands_total{aggregate_type="task",command="Create",outcome="committed"} 4"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("cqrs_append_duration_seconds_bucket"),
        "{metrics}"
    );
    let ready = service.request("GET", "/health/ready", "");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    errors_are_json(&service);
    commands_match_the_openapi_document(&service);

    // Commands until the service stops answering; SIGTERM in the middle of them.
    let address = service.address.clone();
    let sender = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        for i in 0..2000 {
            let id = format!("s-{i}");
            match request(&address, "POST", &format!("/tasks/{id}/commands"), CREATE) {
                Ok(response) if response.starts_with("HTTP/1.1 200") => acknowledged.push(id),
                Ok(response) => panic!("{id}: {response}"),
                Err(_) => break,
            }
        }
        acknowledged
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = service.terminate();
    let acknowledged = sender.join().unwrap();
    assert!(status.success(), "SIGTERM: {status}");
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 2000,
        "{}",
        acknowledged.len()
    );
    let store = open();
    for id in &acknowledged {
        let stored = runtime
            .block_on(store.read_stream("task", id, 0, 10))
            .unwrap();
        assert_eq!(stored.len(), 1, "acknowledged {id} is stored");
    }
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    assert!(log.lines().all(|l| l.starts_with('{')), "JSON logs: {log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");

    // A stored event the read model cannot apply.
    let service = Service::start(dir, "svc-sqlite", &[("LOG_FORMAT", "json")]);
    let poison = cqrs_runtime::NewEvent::raw("Created", 2, serde_json::json!({ "title": 5 }));
    runtime
        .block_on(store.append("task", "t-poison", 0, &[poison]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = service.request("GET", "/health/ready", "");
    // Not ready for a moment is not yet the failure: a runner catching up (the process
    // manager added above, on a loaded machine) turns readiness off too.
    let failed = |ready: &str| ready.starts_with("HTTP/1.1 503") && ready.contains("t-poison");
    while !failed(&ready) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ready = service.request("GET", "/health/ready", "");
    }
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        ready.contains(r#""state":"failed""#) && ready.contains("t-poison"),
        "{ready}"
    );
    service.kill();
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    // The stop is logged at error level, naming the event (not necessarily first: a
    // readiness probe answered 503 before the stop is logged at error level too).
    let stopped = log
        .lines()
        .any(|l| l.contains(r#""level":"ERROR""#) && l.contains("t-poison"));
    assert!(stopped, "{log}");
}

/// Every error status of the API, from the process: a JSON body with its code and a message.
fn errors_are_json(service: &Service) {
    let big = format!(r#"{{"Create": {{"title": "{}"}}}}"#, "x".repeat(70_000));
    let cases: [(&str, &str, Option<&str>, &str, &str); 9] = [
        (
            "POST",
            "/tasks/t-1/commands",
            Some("application/json"),
            "{oops",
            "400 Bad Request",
        ),
        (
            "POST",
            "/tasks//commands",
            Some("application/json"),
            CREATE,
            "400 Bad Request",
        ),
        ("GET", "/nowhere", None, "", "404 Not Found"),
        ("DELETE", "/tasks/t-1", None, "", "405 Method Not Allowed"),
        (
            "POST",
            "/tasks/m-0/commands",
            Some("application/json"),
            CREATE,
            "409 Conflict",
        ),
        (
            "POST",
            "/tasks/t-2/commands",
            Some("application/json"),
            &big,
            "413 Payload Too Large",
        ),
        (
            "POST",
            "/tasks/t-2/commands",
            Some("text/plain"),
            CREATE,
            "415 Unsupported Media Type",
        ),
        (
            "POST",
            "/tasks/t-2/commands",
            Some("application/json"),
            r#"{"Create": {}}"#,
            "422 Unprocessable Entity",
        ),
        (
            "POST",
            "/tasks/t-2/commands",
            Some("application/json"),
            r#"{"Rename": {"title": ""}}"#,
            "404 Not Found",
        ),
    ];
    // Random bodies, seeded: a command, another status with a JSON error, never a 5xx.
    let mut rng = cqrs_tests::history::Rng::new(18, 0);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"Create\"",
        "\"Rename\"",
        "\"title\"",
        "\"priority\"",
        ":",
        ",",
        "1",
        "-1",
        "300",
        "1e999",
        "null",
        "true",
        "\"\\u0000\"",
        "\"x\"",
        "\u{1F600}",
        "\\",
        "\"",
    ];
    for i in 0..200 {
        let body: String = (0..rng.below(12))
            .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
            .collect();
        let path = format!("/tasks/fuzz-{i}/commands");
        let response = raw_request(
            &service.address,
            "POST",
            &path,
            Some("application/json"),
            &body,
        );
        let status: u16 = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!((200..500).contains(&status), "{body:?}: {response}");
        let json: serde_json::Value =
            serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or(""))
                .unwrap_or_default();
        assert!(
            status == 200 || json["error"].is_string(),
            "{body:?}: {response}"
        );
    }
    for (method, path, content_type, body, status) in cases {
        let response = raw_request(&service.address, method, path, content_type, body);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{method} {path}: {response}"
        );
        assert!(
            response.contains("content-type: application/json"),
            "{response}"
        );
        let json: serde_json::Value =
            serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "{json}"
        );
    }
}

/// A request with the content type given or none; the whole response.
fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> String {
    let headers: Vec<(&str, &str)> = content_type
        .map(|t| ("Content-Type", t))
        .into_iter()
        .collect();
    raw_request_with(address, method, path, &headers, body)
}

/// A request with these headers; the whole response.
fn raw_request_with(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let headers: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    // The service may answer 413 and close before reading the whole body.
    let _ = stream.read_to_string(&mut response);
    response
}

/// `/openapi.json`, validated with a JSON Schema validator: the bodies its command schema
/// accepts are the ones the service takes, and those it refuses the service refuses.
fn commands_match_the_openapi_document(service: &Service) {
    let response = service.request("GET", "/openapi.json", "");
    let document: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    // The document itself as the root resource, so that its `#/components/...` references
    // resolve, with the command body's schema as what is checked.
    let mut schema = document.clone();
    schema["$ref"] = serde_json::json!("#/components/schemas/TaskCommand");
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let bodies = [
        (r#"{"Create": {"title": "Valid", "priority": 3}}"#, true),
        (r#"{"Rename": {"title": "Valid"}}"#, true),
        (r#"{"Create": {"priority": 3}}"#, false),
        (r#"{"Create": {"title": "x", "priority": 300}}"#, false),
        (r#"{"Explode": {}}"#, false),
    ];
    for (i, (body, valid)) in bodies.into_iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(validator.is_valid(&value), valid, "{body}");
        let id = format!("o-{i}");
        if body.contains("Rename") {
            service.request("POST", &format!("/tasks/{id}/commands"), CREATE);
        }
        let response = service.request("POST", &format!("/tasks/{id}/commands"), body);
        let accepted = response.starts_with("HTTP/1.1 200");
        assert_eq!(accepted, valid, "{body}: {response}");
    }
}

/// Starts the SQLite service on a free port and sends one command.
fn serve_once(dir: &Path) {
    let service = Service::start(dir, "svc-sqlite", &[]);
    let response = service.request("POST", "/tasks/t-1/commands", CREATE);
    service.kill();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""events":["Created"]"#), "{response}");
}

#[test]
fn sqlite_service_runs_grows_and_keeps_its_events_readable() {
    let parent = WorkDir::new("sqlite-service");
    let dir = generate(parent.path(), "svc-sqlite", "sqlite");
    assert!(ok(&cargo(&dir, &["test"])).contains("9 passed"));
    ok(&cargo(&dir, &["build"]));
    serve_once(&dir);
    production_checks(&dir);
    // A start-up error: one line in its Display form, and a failing exit.
    let refused = Command::new(target_dir().join("debug").join("svc-sqlite"))
        .current_dir(&dir)
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.starts_with("error: environment variable PORT=\"eighty\" is not valid")
            && said.trim_end().lines().count() == 1,
        "{said}"
    );

    // Each kind of item, then the tests again.
    let added = ok(&cqrs(
        &dir,
        &["add", "aggregate", "Project", "name:String", "budget:i64"],
    ));
    assert_eq!(
        added,
        "added: src/project.rs\nadded: tests/project.rs\ninjected: src/lib.rs\n"
    );
    let added = ok(&cqrs(
        &dir,
        &["add", "command", "Archive", "--to", "task", "reason:String"],
    ));
    assert_eq!(added, "injected: src/task.rs\ninjected: tests/task.rs\n");
    ok(&cqrs(
        &dir,
        &[
            "add",
            "event",
            "TaskArchived",
            "--to",
            "task",
            "reason:String",
        ],
    ));
    let added = ok(&cqrs(
        &dir,
        &["add", "projection", "OpenTasks", "--to", "task"],
    ));
    assert_eq!(
        added,
        "added: src/open_tasks.rs\nadded: tests/open_tasks.rs\ninjected: src/lib.rs\ninjected: src/main.rs\n"
    );
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(
        main.contains("runners.projection(&store, open_tasks.clone(), &health);"),
        "{main}"
    );
    let added = ok(&cqrs(
        &dir,
        &["add", "process-manager", "TaskDeadlines", "--to", "task"],
    ));
    assert_eq!(
        added,
        "added: src/task_deadlines.rs\nadded: tests/task_deadlines.rs\ninjected: src/lib.rs\ninjected: src/main.rs\n"
    );
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(
        main.contains("\"process manager `task_deadlines`\"")
            && main.contains("task_deadlines.run(shutdown)"),
        "{main}"
    );
    let again = cqrs(&dir, &["add", "event", "TaskArchived", "--to", "task"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let tests = ok(&cargo(&dir, &["test"]));
    assert!(!tests.contains("FAILED"), "{tests}");

    // The schema gate.
    ok(&cqrs(&dir, &["schema", "export"]));
    openapi_matches_the_export(&dir);
    assert!(ok(&cqrs(&dir, &["schema", "check"])).contains("0 error(s)"));
    let task = dir.join("src/task.rs");
    edit(
        &task,
        "    Renamed {\n        /// The new title.\n        title: String,\n    },",
        "    Renamed {\n        /// The new title.\n        title: String,\n        /// Who renamed it.\n        by: String,\n    },",
    );
    edit(
        &task,
        "then_some(Renamed { title: new })",
        "then_some(Renamed { title: new, by: String::new() })",
    );
    let refused = cqrs(&dir, &["schema", "check"]);
    assert_eq!(refused.status.code(), Some(1));
    let report = String::from_utf8_lossy(&refused.stdout);
    assert!(
        report.contains("error: event `Renamed` v1 of `task`: stored shape changed: required field `by` added without a default"),
        "{report}"
    );
    edit(
        &task,
        "    /// A task got another title.\n    Renamed {",
        "    /// A task got another title.\n    #[event(version = 2, upcast(v1 { title: String } => |v1| Renamed { title: v1.title, by: String::new() }))]\n    Renamed {",
    );
    let accepted = ok(&cqrs(&dir, &["schema", "check"]));
    assert!(accepted.contains("0 error(s)"), "{accepted}");
    assert!(
        accepted.contains("note: event `Renamed` v2 of `task`: new version"),
        "{accepted}"
    );
}

/// The OpenAPI document's command schemas are the exported ones.
fn openapi_matches_the_export(dir: &Path) {
    let service = Service::start(dir, "svc-sqlite", &[]);
    let response = service.request("GET", "/openapi.json", "");
    service.kill();
    let document: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    for name in ["Create", "Rename", "Complete"] {
        let file = dir.join(format!("schemas/task/commands/{name}.json"));
        let mut exported: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut served = document["components"]["schemas"][name].clone();
        for schema in [&mut exported, &mut served] {
            let object = schema.as_object_mut().unwrap();
            object.remove("$schema");
            object.remove("$id");
        }
        assert_eq!(served, exported, "{name}");
    }
}

#[test]
fn new_refuses_bad_names_and_non_empty_folders() {
    let parent = WorkDir::new("new-refuses");
    let bad = cqrs(parent.path(), &["new", "fn"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("error: `fn` cannot be a crate name: it is a Rust keyword"),
        "{err}"
    );
    assert!(
        err.contains("help: choose a name such as `order-service`"),
        "{err}"
    );

    std::fs::create_dir(parent.path().join("taken")).unwrap();
    std::fs::write(parent.path().join("taken/notes.txt"), "mine").unwrap();
    let busy = cqrs(parent.path(), &["new", "taken"]);
    assert_eq!(busy.status.code(), Some(2));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("exists and is not empty"), "{err}");
    assert!(err.contains("pass `--force`"), "{err}");
    assert!(
        cqrs(parent.path(), &["new", "taken", "--force"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(parent.path().join("taken/notes.txt")).unwrap(),
        "mine"
    );
}

/// This package's folder, read where cargo runs the test (a binary reused from another
/// checkout that shares the target directory would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
