//! The brokers of the bus tests: a NATS server or a tansu Kafka broker started per test on a
//! free port of 127.0.0.1 (from the binaries `scripts/brokers.sh` installs and names in
//! `NATS_SERVER_BIN` and `TANSU_BIN`), which a test can kill and start again; or a broker
//! already running, named by `NATS_URL` or `KAFKA_BROKERS` (then the tests that restart the
//! broker are skipped, saying so).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// NATS with JetStream.
    Nats,
    /// Kafka (tansu).
    Kafka,
}

impl Kind {
    /// `nats` or `kafka`: how child processes are told.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nats => "nats",
            Kind::Kafka => "kafka",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(name: &str) -> Result<Kind, String> {
        match name {
            "nats" => Ok(Kind::Nats),
            "kafka" => Ok(Kind::Kafka),
            other => Err(format!("`{other}` is no broker: nats or kafka")),
        }
    }
}

/// A broker for one test.
#[derive(Debug)]
pub struct Broker {
    kind: Kind,
    address: String,
    managed: Option<Managed>,
}

#[derive(Debug)]
struct Managed {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    /// A broker of `kind`, or `None` (skipped, said on stderr) when none is configured outside
    /// CI; in CI a missing broker fails the test.
    pub fn start(kind: Kind, tests: &str) -> Option<Broker> {
        let (url_var, bin_var) = match kind {
            Kind::Nats => ("NATS_URL", "NATS_SERVER_BIN"),
            Kind::Kafka => ("KAFKA_BROKERS", "TANSU_BIN"),
        };
        if let Some(address) = std::env::var(url_var).ok().filter(|v| !v.is_empty()) {
            return Some(Broker {
                kind,
                address,
                managed: None,
            });
        }
        let Some(bin) = std::env::var_os(bin_var).filter(|v| !v.is_empty()) else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "neither {url_var} nor {bin_var} is set, and CI must run the {tests}: run `bash scripts/test.sh`, which installs the brokers"
                );
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the {tests} need {bin_var} (or {url_var}); `bash scripts/test.sh` installs the brokers and sets it"
            );
            return None;
        };
        let port = free_port();
        let mut broker = Broker {
            kind,
            address: match kind {
                Kind::Nats => format!("nats://127.0.0.1:{port}"),
                Kind::Kafka => format!("127.0.0.1:{port}"),
            },
            managed: Some(Managed {
                bin: bin.into(),
                port,
                dir: tempfile::tempdir().expect("a broker data directory"),
                child: None,
            }),
        };
        broker.resume();
        Some(broker)
    }

    /// Which broker this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The NATS URL, or the Kafka bootstrap address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether this test started the broker (and so can kill and restart it).
    pub fn restartable(&self) -> bool {
        self.managed.is_some()
    }

    /// Kills the broker (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(child) = self.managed.as_mut().and_then(|m| m.child.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(managed) = self.managed.as_mut() {
            managed.child = None;
        }
    }

    /// Starts the broker again on the same port with the same data directory, and waits until
    /// it accepts connections.
    pub fn resume(&mut self) {
        let kind = self.kind;
        let Some(managed) = self.managed.as_mut() else {
            return;
        };
        let port = managed.port.to_string();
        let dir = managed.dir.path();
        let mut command = Command::new(&managed.bin);
        match kind {
            Kind::Nats => {
                command.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"]);
                command.arg(dir);
            }
            Kind::Kafka => {
                let url = format!("tcp://127.0.0.1:{port}");
                // A file in the working directory (tansu takes the URL's host as the path).
                command.current_dir(dir);
                let storage = "sqlite://tansu.db".to_owned();
                command.args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    &storage,
                ]);
            }
        }
        let log = std::fs::File::create(dir.join("broker.log")).expect("a broker log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", managed.bin.display()));
        let child = managed.child.insert(child);
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            let exited = child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the broker did not listen on {address} ({}); its log: {}",
                exited.map_or("not within 60 s".to_owned(), |s| format!("it exited: {s}")),
                std::fs::read_to_string(dir.join("broker.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
