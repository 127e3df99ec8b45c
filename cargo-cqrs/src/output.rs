//! How `cargo cqrs` talks: the global `--color` and `--message-format` flags, the console a
//! command reports through, and errors and findings rendered by miette, with the lines of the
//! file they point at when there is one.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, JSONReportHandler};
use serde::Serialize;

use crate::error::Error;

/// When to color the output, as cargo's `--color` takes it. (The variants have no doc
/// comments: clap would turn them into a long help.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    // When the output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to color what goes to a stream that `is_terminal` or not.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// The value for a `--color` flag of the cargo that `cargo cqrs` runs.
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Auto => "auto",
            Color::Always => "always",
            Color::Never => "never",
        }
    }
}

/// The form of what a command reports, as cargo's `--message-format` takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    // Lines for people; errors with their help and the source lines they point at.
    #[default]
    Human,
    // One JSON document on the standard output per command; an error as one JSON document on
    // the standard error.
    Json,
}

/// The flags every subcommand takes.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Output {
    /// Coloring (`auto`: when the output is a terminal and `NO_COLOR` is unset).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t,
        help_heading = "Display Options"
    )]
    pub color: Color,
    /// The report's form: `json` is one JSON document per command on the standard output,
    /// and an error as JSON on the standard error.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FMT",
        default_value_t,
        help_heading = "Display Options"
    )]
    pub message_format: MessageFormat,
}

/// Where a command reports: human lines, or one JSON document at the end.
pub struct Console<'a> {
    out: &'a mut dyn Write,
    output: Output,
    /// Whether `out` is a terminal (for `--color auto`).
    terminal: bool,
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl<'a> Console<'a> {
    /// A console writing to `out`, which is a terminal or not.
    pub fn new(out: &'a mut dyn Write, output: Output, terminal: bool) -> Self {
        Console {
            out,
            output,
            terminal,
        }
    }

    /// The console of the standard output.
    pub fn stdout(out: &'a mut std::io::Stdout, output: Output) -> Self {
        let terminal = out.is_terminal();
        Console::new(out, output, terminal)
    }

    /// The flags it was made with.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Whether it reports as JSON.
    pub fn json(&self) -> bool {
        self.output.message_format == MessageFormat::Json
    }

    /// Writes a line in the human form (nothing in the JSON form).
    pub fn line(&mut self, line: impl std::fmt::Display) -> Result<(), Error> {
        if self.json() {
            return Ok(());
        }
        writeln!(self.out, "{line}").map_err(Error::Output)
    }

    /// Writes text as it is, in the human form.
    pub fn text(&mut self, text: &str) -> Result<(), Error> {
        if self.json() {
            return Ok(());
        }
        self.out.write_all(text.as_bytes()).map_err(Error::Output)
    }

    /// Renders a diagnostic (a finding) in the human form.
    pub fn diagnostic(&mut self, diagnostic: &dyn Diagnostic) -> Result<(), Error> {
        if self.json() {
            return Ok(());
        }
        let colored = self.output.color.enabled(self.terminal);
        let text = render(diagnostic, colored);
        self.out.write_all(text.as_bytes()).map_err(Error::Output)
    }

    /// Writes the command's JSON document, in the JSON form.
    pub fn document(&mut self, value: &impl Serialize) -> Result<(), Error> {
        if !self.json() {
            return Ok(());
        }
        let text = serde_json::to_string(value).map_err(|e| Error::Output(e.into()))?;
        writeln!(self.out, "{text}").map_err(Error::Output)
    }
}

/// A diagnostic as miette draws it, with cargo's words: `error:`, `warning:`, `note:`, then
/// the lines of the source it points at and its `help:`. Lines are not wrapped: a message
/// holding cargo's own output keeps its lines.
pub fn render(diagnostic: &dyn Diagnostic, colored: bool) -> String {
    let mut theme = if colored {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    theme.characters.error = "error:".into();
    theme.characters.warning = "warning:".into();
    theme.characters.advice = "note:".into();
    let handler = GraphicalReportHandler::new_themed(theme)
        .without_cause_chain()
        .with_wrap_lines(false)
        .with_links(false);
    let mut text = String::new();
    if handler.render_report(&mut text, diagnostic).is_err() {
        text = format!("error: {diagnostic}\n");
    }
    // miette indents the first line by two spaces; cargo starts at the margin.
    text.strip_prefix("  ").unwrap_or(&text).to_owned()
}

/// Writes an error to `err`: miette's rendering, or its JSON.
pub fn report(error: &Error, output: Output, err: &mut dyn Write, terminal: bool) {
    let text = match output.message_format {
        MessageFormat::Human => render(error, output.color.enabled(terminal)),
        MessageFormat::Json => {
            let mut json = String::new();
            match JSONReportHandler::new().render_report(&mut json, error) {
                Ok(()) => json + "\n",
                Err(_) => format!("{}\n", serde_json::json!({ "message": error.to_string() })),
            }
        }
    };
    let _ = err.write_all(text.as_bytes());
}

/// The byte offset of a 1-based line and a 0-based character column in `text` (the end of the
/// text if it is shorter).
pub fn offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[start.min(text.len())..];
    start
        + rest
            .char_indices()
            .take_while(|&(_, c)| c != '\n')
            .nth(column)
            .map_or_else(|| rest.find('\n').unwrap_or(rest.len()), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_lines_and_characters() {
        let text = "ab\ncé d\n\nx";
        assert_eq!(offset(text, 1, 0), 0);
        assert_eq!(offset(text, 1, 1), 1);
        assert_eq!(offset(text, 2, 0), 3);
        assert_eq!(offset(text, 2, 2), 6, "é is two bytes");
        assert_eq!(offset(text, 2, 9), 8, "past the line's end: its end");
        assert_eq!(offset(text, 3, 0), 9);
        assert_eq!(offset(text, 4, 0), 10);
        assert_eq!(offset(text, 9, 0), text.len());
    }

    #[test]
    fn errors_render_like_cargo_and_as_json() {
        let error = Error::BadName {
            name: "fn".into(),
            why: "it is a Rust keyword".into(),
        };
        let text = render(&error, false);
        assert!(
            text.starts_with("error: `fn` cannot be a crate name: it is a Rust keyword\n"),
            "{text}"
        );
        assert!(
            text.contains("  help: choose a name such as `order-service`"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "no color: {text:?}");
        assert!(render(&error, true).contains('\u{1b}'), "color");

        let mut json = Vec::new();
        let output = Output {
            color: Color::Never,
            message_format: MessageFormat::Json,
        };
        report(&error, output, &mut json, false);
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            json["message"],
            "`fn` cannot be a crate name: it is a Rust keyword"
        );
        assert!(json["help"].as_str().unwrap().starts_with("choose a name"));
    }
}
