//! The only module that prints or asks: stdout for results, stderr for notes, warnings,
//! errors and progress, and prompts (line-based; dialoguer only for passwords) only when
//! both stdin and stderr are terminals.
//! Colour is used on a terminal and never when `NO_COLOR` is set.

// The one module that talks to the terminal.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Writes a result to stdout. A closed pipe (`keyctl … | head`) is not an error.
pub(crate) fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                stdout.write_all(b"\n")
            }
        })
        .and_then(|()| stdout.flush());
}

/// Standard output for a stream of results (`token verify -`), buffered; the caller writes
/// lines it has cleaned with [`clean`].
pub(crate) fn output() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// Standard input, for commands that read tokens from it.
pub(crate) fn input() -> std::io::StdinLock<'static> {
    std::io::stdin().lock()
}

/// `text` in an ANSI colour when stdout is a terminal and `NO_COLOR` is unset.
#[must_use]
pub(crate) fn paint(text: &str, code: &str) -> String {
    if io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` with every control character escaped (`\n`, `\u{1b}`, …), and the Unicode line
/// and paragraph separators and bidirectional controls too, so a value from a file or a token
/// (a kid, a claim) can neither break a one-line message, nor drive the terminal, nor make a
/// line read differently from what it holds.
#[must_use]
pub(crate) fn clean(text: &str) -> String {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{2028}'
                    | '\u{2029}'
                    | '\u{061C}'
                    | '\u{200E}'
                    | '\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}'
            )
    }
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes a line to stderr; a stderr that cannot be written (a full disk, a closed pipe) is
/// not a reason to crash.
fn err_line(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{}", clean(line));
}

fn tagged(tag: &str, code: &str, text: &str) {
    if colour() {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "\x1b[{code}m{tag}\x1b[0m {}", clean(text));
    } else {
        err_line(&format!("{tag} {text}"));
    }
}

/// An error line: `error: …`.
pub(crate) fn error(text: &str) {
    tagged("error:", "1;31", text);
}

/// An error as one JSON object on stderr (when the command was asked for JSON):
/// `{"error": {"exit": 3, "kind": "refused", "message": "…"}}`.
pub(crate) fn error_json(exit: u8, kind: &str, message: &str) {
    let v = serde_json::json!({"error": {"exit": exit, "kind": kind, "message": clean(message.trim_end())}});
    let _ = writeln!(io::stderr(), "{v}");
}

/// Text on stderr as it is (the human plan when stdout carries JSON).
pub(crate) fn err_out(text: &str) {
    let _ = write!(io::stderr(), "{text}");
}

/// A warning line: `warning: …`.
pub(crate) fn warn(text: &str) {
    tagged("warning:", "1;33", text);
}

/// An informational line on stderr.
pub(crate) fn note(text: &str) {
    err_line(text);
}

/// Whether keyctl may ask questions: stdin and stderr are both terminals.
#[must_use]
pub(crate) fn interactive() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

/// Asks the user to pick one of `items` (returns its index) from a numbered list, answered
/// on Enter (`⏎` alone takes `default`). A plain line prompt: the cursor is never hidden and
/// the terminal never leaves its normal mode, so Ctrl-C leaves it as it was. `None` when the
/// prompt could not be shown, input ended, or three answers were not a number in range.
#[must_use]
pub(crate) fn select(prompt: &str, items: &[&str], default: usize) -> Option<usize> {
    use std::io::Write;
    let mut err = io::stderr();
    writeln!(err, "{prompt}:").ok()?;
    for (i, item) in items.iter().enumerate() {
        writeln!(err, "  {}) {item}", i + 1).ok()?;
    }
    for _ in 0..3 {
        write!(err, "Choose 1-{} [{}]: ", items.len(), default + 1).ok()?;
        err.flush().ok()?;
        let answer = read_answer()?;
        if answer.is_empty() {
            return Some(default);
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=items.len()).contains(&n) => return Some(n - 1),
            _ => writeln!(err, "type a number from 1 to {}", items.len()).ok()?,
        }
    }
    None
}

/// One answer typed on the terminal, trimmed (at most 256 bytes are read); `None` at the end
/// of input.
fn read_answer() -> Option<String> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    let read = io::stdin().lock().take(256).read_line(&mut line).ok()?;
    (read > 0).then(|| line.trim().to_owned())
}

/// Asks a yes/no question on the terminal (default no), answered on Enter as apt and gh do:
/// one keystroke never answers, so `y⏎` cannot spill into the next question. `None` when it
/// could not be asked (no terminal, end of input).
#[must_use]
pub(crate) fn confirm(question: &str) -> Option<bool> {
    use std::io::Write;
    let mut err = io::stderr();
    write!(err, "{question} [y/N] ").ok()?;
    err.flush().ok()?;
    let answer = read_answer()?.to_ascii_lowercase();
    Some(answer == "y" || answer == "yes")
}

/// Asks for a password on the terminal without echo. With `confirm_min = Some(n)` it is asked
/// twice and must be at least `n` characters. `None` when cancelled or no terminal.
#[must_use]
pub(crate) fn password(
    prompt: &str,
    confirm_min: Option<usize>,
) -> Option<zeroize::Zeroizing<String>> {
    let mut p = dialoguer::Password::new().with_prompt(prompt);
    if let Some(min) = confirm_min {
        p = p
            .with_confirmation("Repeat the password", "the passwords differ; try again")
            .validate_with(move |s: &String| {
                if s.chars().count() < min {
                    Err(format!("use at least {min} characters"))
                } else {
                    Ok(())
                }
            });
    }
    p.interact().ok().map(zeroize::Zeroizing::new)
}

/// Runs `work`, showing an elapsed-time line on stderr while it runs when stderr is a
/// terminal and `show` is set.
pub(crate) fn with_progress<T: Send>(
    label: &str,
    show: bool,
    work: impl FnOnce() -> T + Send,
) -> T {
    if !show || !io::stderr().is_terminal() {
        return work();
    }
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let flag = Arc::clone(&done);
        s.spawn(move || {
            let start = Instant::now();
            let frames = ['|', '/', '-', '\\'];
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let _ = write!(
                    io::stderr(),
                    "\r{} {label} {:.1}s",
                    frames[i % 4],
                    start.elapsed().as_secs_f32()
                );
                i += 1;
                let _ = rx.recv_timeout(Duration::from_millis(100));
            }
            let _ = write!(io::stderr(), "\r\x1b[2K");
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        let _ = tx.send(());
        result
    })
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_escapes_what_could_forge_a_line_or_drive_the_terminal() {
        assert_eq!(clean("kid-1"), "kid-1");
        assert_eq!(clean("a\nb\r\u{1b}[2J"), "a\\nb\\r\\u{1b}[2J");
        assert_eq!(clean("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
        assert_eq!(clean("r\u{f4}le \u{e9}"), "r\u{f4}le \u{e9}");
    }
}
