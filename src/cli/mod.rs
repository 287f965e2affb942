//! `outpost cli`: a ZooKeeper command-line client with zkCli's commands and output formats.
//!
//! Three modes, as zkCli has: a command given on the command line runs once (the exit code is non-zero
//! when it fails); otherwise commands are read from stdin, line by line when stdin is not a terminal, and
//! with line editing and history (rustyline) and zkCli's prompt `[zk: host:port(CONNECTED) N] ` when it
//! is. Watch events print as `WATCHER::` blocks while `printwatches` is on.

pub mod commands;
pub mod parse;

use crate::cli_args::CliArgs;
use commands::{After, CliFailure};
use outpost_core::client::{Client, EventReceiver, EventType};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shell: the session (if any), history and settings.
pub struct Shell {
    client: Option<Client>,
    host: String,
    timeout: Duration,
    history: BTreeMap<usize, String>,
    count: usize,
    print_watches: Arc<AtomicBool>,
    show_state_events: bool,
    exit_code: i32,
    quit: bool,
}

/// Prints events from `events` while `print` is on, as zkCli's `MyWatcher` does.
fn spawn_printer(mut events: EventReceiver, print: Arc<AtomicBool>, show_state_events: bool) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if !print.load(Ordering::Relaxed) {
                continue;
            }
            if e.event_type == EventType::None && !show_state_events {
                continue;
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "\nWATCHER::\n\n{e}");
            let _ = out.flush();
        }
    });
}

impl Shell {
    /// A shell that will connect to `host`.
    pub fn new(host: &str, timeout: Duration, show_state_events: bool) -> Shell {
        Shell {
            client: None,
            host: host.to_string(),
            timeout,
            history: BTreeMap::new(),
            count: 0,
            print_watches: Arc::new(AtomicBool::new(true)),
            show_state_events,
            exit_code: 0,
            quit: false,
        }
    }

    /// Connects (or reconnects) to `host`, closing any previous session.
    pub async fn connect(&mut self, host: &str) -> Result<(), CliFailure> {
        if let Some(old) = self.client.take() {
            let _ = old.close().await;
        }
        self.host = host.to_string();
        let (client, events) = Client::connect(host, self.timeout)
            .await
            .map_err(|e| CliFailure::new(format!("Unable to connect to {host}: {e}")))?;
        spawn_printer(events, self.print_watches.clone(), self.show_state_events);
        self.client = Some(client);
        Ok(())
    }

    /// zkCli's prompt.
    pub fn prompt(&self) -> String {
        let state = match &self.client {
            Some(c) => c.state().to_string(),
            None => "CLOSED".to_string(),
        };
        format!("[zk: {}({}) {}] ", self.host, state, self.count)
    }

    /// Runs one line typed or piped in: records it in the history and executes it.
    pub async fn execute_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.history.insert(self.count, line.to_string());
        let words = parse::split_line(line);
        self.process(words).await;
        self.count += 1;
    }

    /// Executes one command, printing its failure and recording the exit code.
    pub async fn process(&mut self, words: Vec<String>) {
        match self.process_inner(words, 0).await {
            Ok(()) => self.exit_code = 0,
            Err(f) => {
                eprintln!("{}", f.message);
                self.exit_code = f.code;
            }
        }
    }

    async fn process_inner(&mut self, words: Vec<String>, depth: u8) -> Result<(), CliFailure> {
        let Some(cmd) = words.first().cloned() else {
            eprint!("{}", commands::usage_text());
            return Err(CliFailure::new("No command entered"));
        };
        let Some(def) = commands::find(&cmd) else {
            eprint!("{}", commands::usage_text());
            return Err(CliFailure {
                message: format!("Command not found: {cmd}"),
                code: 127,
            });
        };
        match cmd.as_str() {
            "help" => {
                print!("{}", commands::usage_text());
                return Ok(());
            }
            "quit" => {
                if let Some(c) = self.client.take() {
                    let _ = c.close().await;
                }
                self.quit = true;
                return Ok(());
            }
            "history" => {
                let from = self.count.saturating_sub(10);
                for i in from..=self.count {
                    if let Some(l) = self.history.get(&i) {
                        println!("{i} - {l}");
                    }
                }
                return Ok(());
            }
            "printwatches" => {
                match words.get(1) {
                    None => println!(
                        "printwatches is {}",
                        if self.print_watches.load(Ordering::Relaxed) {
                            "on"
                        } else {
                            "off"
                        }
                    ),
                    Some(v) => self.print_watches.store(v == "on", Ordering::Relaxed),
                }
                return Ok(());
            }
            "redo" => {
                let Some(n) = words.get(1) else {
                    return Err(CliFailure::new("redo cmdno"));
                };
                let i: usize = n
                    .parse()
                    .map_err(|_| CliFailure::new("Command index out of range"))?;
                if i >= self.count || depth > 0 {
                    return Err(CliFailure::new("Command index out of range"));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let again = parse::split_line(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return Err(CliFailure::new("No redoing redos"));
                }
                self.history.insert(self.count, line);
                return Box::pin(self.process_inner(again, depth + 1)).await;
            }
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                return self.connect(&host).await;
            }
            _ => {}
        }
        let Some(client) = self.client.clone() else {
            println!("Not connected");
            return Ok(());
        };
        if client.state() == outpost_core::client::State::Closed {
            println!("Not connected");
            return Ok(());
        }
        let parsed = commands::parse_for(def, &words)?;
        match commands::run(&client, def, &parsed).await? {
            After::Done => {}
            After::Closed => self.client = None,
        }
        Ok(())
    }
}

/// Entry point of `outpost cli`.
pub fn run(args: CliArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outpost cli: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let timeout = Duration::from_millis(u64::from(args.timeout_ms));
    let one_shot = !args.command.is_empty();
    let interactive = !one_shot && std::io::stdin().is_terminal();
    let mut shell = Shell::new(&args.server, timeout, !one_shot);
    if interactive {
        println!("Connecting to {}", args.server);
    }
    if let Err(f) = runtime.block_on(shell.connect(&args.server)) {
        eprintln!("{}", f.message);
        if one_shot || !interactive {
            return ExitCode::from(1);
        }
    }
    if one_shot {
        runtime.block_on(async {
            shell.process(args.command.clone()).await;
            if let Some(c) = shell.client.take() {
                let _ = c.close().await;
            }
        });
    } else if interactive {
        println!("Welcome to outpost's ZooKeeper CLI!");
        interactive_loop(&runtime, &mut shell);
    } else {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            runtime.block_on(shell.execute_line(&line));
            if shell.quit {
                break;
            }
        }
        runtime.block_on(async {
            if let Some(c) = shell.client.take() {
                let _ = c.close().await;
            }
        });
    }
    let _ = std::io::stdout().flush();
    // Give the event printer no chance to write after we return.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(shell.exit_code.clamp(0, 255) as u8)
}

fn interactive_loop(runtime: &tokio::runtime::Runtime, shell: &mut Shell) {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("line editing unavailable: {e}");
            return;
        }
    };
    let history_file =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".outpost_cli_history"));
    if let Some(h) = &history_file {
        let _ = editor.load_history(h);
    }
    loop {
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                runtime.block_on(shell.execute_line(&line));
                if shell.quit {
                    break;
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(h) = &history_file {
        let _ = editor.save_history(h);
    }
    runtime.block_on(async {
        if let Some(c) = shell.client.take() {
            let _ = c.close().await;
        }
    });
}
