//! `token verify -`'s pipeline: stdin read in bounded lines, the lines judged in batches on
//! every core, the outputs written in input order.
//!
//! Memory stays bounded whatever the input: a line is held only up to its cap (a longer one is
//! consumed unread), a batch closes at a number of lines or bytes, and only a few batches are
//! read ahead of the output. The output is the one a single thread gives, byte for byte: the
//! same lines, in order, the same count of rejected tokens, and after a write error (a closed
//! pipe) nothing more is written or counted.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::sync::{Mutex, mpsc};
use std::thread;

use super::MAX_LINE;

/// One line of stdin.
pub(super) enum Line {
    /// The line's bytes, without its newline.
    Text(Vec<u8>),
    /// A line longer than the cap, consumed without being kept.
    TooLong,
}

/// How the lines are shared out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pipeline {
    /// Threads that judge lines.
    pub(super) workers: usize,
    /// A batch closes at this many lines…
    pub(super) batch_lines: usize,
    /// …or once it holds this many bytes.
    pub(super) batch_bytes: usize,
    /// Batches read but not yet written, at most.
    pub(super) in_flight: usize,
}

impl Pipeline {
    /// One worker a core (at most 16), batches of 256 lines or 256 KiB, two batches a worker
    /// between reading and writing: with two cores, at most about 1.1 MB of input held.
    pub(super) fn for_this_machine() -> Pipeline {
        let workers = thread::available_parallelism().map_or(1, |n| n.get().min(16));
        Pipeline {
            workers,
            batch_lines: 256,
            batch_bytes: 256 * 1024,
            in_flight: 2 * workers,
        }
    }
}

/// What judges one line: given the worker's own state, the line's number from 1 and the line,
/// the output it gives (`None`: nothing) and whether it was accepted.
pub(super) type Judge<'j, S> = dyn Fn(&mut S, usize, Line) -> Option<(String, bool)> + Sync + 'j;

/// Numbered lines, judged together.
type Batch = Vec<(usize, Line)>;

/// What a batch's lines say: the output of each line that says something, and whether it was
/// accepted.
type Said = Vec<Option<(String, bool)>>;

/// Reads `reader` to its end, judges each line with `judge`, and writes each output line to `out` in input order.
/// Returns how many lines were rejected (those written, when writing failed).
///
/// # Errors
/// Reading failed: the lines before it are judged and written first.
pub(super) fn run<S, R, W>(
    pipeline: &Pipeline,
    reader: &mut R,
    out: &mut W,
    judge: &Judge<'_, S>,
) -> io::Result<usize>
where
    S: Default,
    R: BufRead,
    W: Write,
{
    let in_flight = pipeline.in_flight.max(1);
    let (batches, inbox) = mpsc::sync_channel::<(usize, Batch)>(in_flight);
    let inbox = Mutex::new(inbox);
    let (results, outbox) = mpsc::channel::<(usize, Said)>();
    thread::scope(|scope| {
        for _ in 0..pipeline.workers.max(1) {
            let results = results.clone();
            let inbox = &inbox;
            scope.spawn(move || {
                let mut state = S::default();
                loop {
                    let next = inbox.lock().map_or(None, |rx| rx.recv().ok());
                    let Some((seq, batch)) = next else { break };
                    let said: Said = batch
                        .into_iter()
                        .map(|(index, line)| judge(&mut state, index, line))
                        .collect();
                    if results.send((seq, said)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);

        let mut lines = Lines {
            reader,
            index: 0,
            pipeline,
        };
        let mut writer = Writer {
            out,
            rejected: 0,
            failed: false,
        };
        let (mut sent, mut written) = (0usize, 0usize);
        let mut waiting: BTreeMap<usize, Said> = BTreeMap::new();
        let mut end: Option<io::Result<()>> = None;
        loop {
            while end.is_none() && !writer.failed && sent - written < in_flight {
                let (batch, stop) = lines.batch();
                if !batch.is_empty() {
                    if batches.send((sent, batch)).is_err() {
                        break; // every worker is gone: a panic, raised when the scope ends
                    }
                    sent += 1;
                }
                end = stop;
            }
            if written == sent {
                break;
            }
            let Ok((seq, said)) = outbox.recv() else {
                break;
            };
            waiting.insert(seq, said);
            while let Some(said) = waiting.remove(&written) {
                writer.write(said);
                written += 1;
            }
        }
        drop(batches);
        match end {
            Some(Err(e)) => Err(e),
            _ => Ok(writer.rejected),
        }
    })
}

/// The numbered lines of the input, taken a batch at a time.
struct Lines<'r, 'p, R> {
    reader: &'r mut R,
    index: usize,
    pipeline: &'p Pipeline,
}

impl<R: BufRead> Lines<'_, '_, R> {
    /// The next batch, and `Some` when the input ended (`Ok`) or failed (`Err`) after it.
    fn batch(&mut self) -> (Batch, Option<io::Result<()>>) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < self.pipeline.batch_lines && bytes < self.pipeline.batch_bytes {
            match read_line(self.reader, MAX_LINE) {
                Ok(Some(line)) => {
                    self.index += 1;
                    bytes += match &line {
                        Line::Text(b) => b.len(),
                        Line::TooLong => 0,
                    };
                    batch.push((self.index, line));
                }
                Ok(None) => return (batch, Some(Ok(()))),
                Err(e) => return (batch, Some(Err(e))),
            }
        }
        (batch, None)
    }
}

/// Writes outputs in order, counting rejections until a write fails.
struct Writer<'w, W> {
    out: &'w mut W,
    rejected: usize,
    failed: bool,
}

impl<W: Write> Writer<'_, W> {
    fn write(&mut self, said: Said) {
        for (text, ok) in said.into_iter().flatten() {
            if self.failed {
                return; // a closed pipe: stop quietly
            }
            if !ok {
                self.rejected += 1;
            }
            self.failed = writeln!(self.out, "{text}").is_err();
        }
    }
}

/// Reads one line of at most `cap` bytes; `None` at the end of the input. A longer line is
/// consumed chunk by chunk up to its newline and never held: memory stays bounded whatever
/// the input.
fn read_line(reader: &mut impl BufRead, cap: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(cap as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(Line::Text(line)));
    }
    if line.len() <= cap {
        return Ok(Some(Line::Text(line))); // the last line, without a newline
    }
    drop(line);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(Some(Line::TooLong));
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(Some(Line::TooLong));
        }
        let len = buf.len();
        reader.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A judge that says which line it saw and how long it was, and accepts lines starting
    /// with `good`.
    fn judge(seen: &mut usize, index: usize, line: Line) -> Option<(String, bool)> {
        *seen += 1;
        match line {
            Line::Text(b) if b.iter().all(u8::is_ascii_whitespace) => None,
            Line::Text(b) => Some((
                format!(
                    "line {index}: {} bytes\n  {}",
                    b.len(),
                    b.starts_with(b"good")
                ),
                b.starts_with(b"good"),
            )),
            Line::TooLong => Some((format!("line {index}: too long"), false)),
        }
    }

    fn mixed_input() -> Vec<u8> {
        let mut input = Vec::new();
        for i in 0..500 {
            match i % 7 {
                0 => input.extend_from_slice(b"good token\n"),
                1 => input.extend_from_slice(b"bad\n"),
                2 => input.extend_from_slice(b"\n"),
                3 => {
                    input.extend(std::iter::repeat_n(b'A', MAX_LINE + 10));
                    input.push(b'\n');
                }
                4 => input.extend_from_slice(b"   \r\n"),
                5 => input.extend_from_slice(format!("good {i}\n").as_bytes()),
                _ => input.extend_from_slice("x\u{1b}[2J\n".as_bytes()),
            }
        }
        input.extend_from_slice(b"good, the last line without a newline");
        input
    }

    fn pipeline(
        workers: usize,
        batch_lines: usize,
        batch_bytes: usize,
        in_flight: usize,
    ) -> Pipeline {
        Pipeline {
            workers,
            batch_lines,
            batch_bytes,
            in_flight,
        }
    }

    fn output(p: &Pipeline, input: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let rejected = run(p, &mut &input[..], &mut out, &judge).unwrap();
        (out, rejected)
    }

    #[test]
    fn parallel_output_is_the_single_thread_output() {
        let input = mixed_input();
        let one = output(&pipeline(1, usize::MAX, usize::MAX, 1), &input);
        assert_eq!(one.0.iter().filter(|b| **b == b'\n').count(), 645);
        assert!(one.0.starts_with(
            b"line 1: 10 bytes\n  true\nline 2: 3 bytes\n  false\nline 4: too long\n"
        ));
        for p in [
            Pipeline::for_this_machine(),
            pipeline(4, 3, usize::MAX, 2),
            pipeline(3, 1000, 100, 5),
            pipeline(2, 1, 1, 1),
            pipeline(8, 7, 50_000, 16),
        ] {
            assert_eq!(output(&p, &input), one, "{p:?}");
        }
    }

    /// Writes `budget` lines, then fails as a closed pipe does.
    struct ClosedAfter {
        budget: usize,
        text: Vec<u8>,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if buf.ends_with(b"\n") {
                self.budget -= 1;
            }
            self.text.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_writing_and_counting_at_the_same_line() {
        let input = mixed_input();
        let run_with = |p: &Pipeline| {
            let mut out = ClosedAfter {
                budget: 40,
                text: Vec::new(),
            };
            let rejected = run(p, &mut &input[..], &mut out, &judge).unwrap();
            (out.text, rejected)
        };
        let one = run_with(&pipeline(1, usize::MAX, usize::MAX, 1));
        // 40 outputs written, the 41st fails: 8 rounds of 5 outputs (3 rejected), then a
        // good one.
        assert_eq!(one.1, 24, "rejections up to the line whose write failed");
        for p in [pipeline(4, 3, usize::MAX, 2), pipeline(2, 1, 1, 1)] {
            assert_eq!(run_with(&p), one, "{p:?}");
        }
    }

    /// Gives `good` lines, then fails.
    struct FailsAfter(Vec<u8>);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("the disk went away"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_lines_before_it() {
        for p in [
            pipeline(1, usize::MAX, usize::MAX, 1),
            pipeline(3, 2, usize::MAX, 2),
        ] {
            let mut reader =
                io::BufReader::new(FailsAfter(b"good\nbad\ngood\ngood\nbad\n".repeat(3)));
            let mut out = Vec::new();
            let err = run(&p, &mut reader, &mut out, &judge).unwrap_err();
            assert_eq!(err.to_string(), "the disk went away");
            assert_eq!(
                String::from_utf8(out).unwrap().matches("bytes").count(),
                15,
                "{p:?}"
            );
        }
    }
}
