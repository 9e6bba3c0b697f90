//! Helpers shared by the unit tests of the compose submodules; compiled only for tests.
//!
//! They only inspect text a test already holds: nothing here parses compose files, reads
//! fixtures, or touches the filesystem.

/// The `is_right` check most tests give `set_env`: the value starts with `prefix`.
pub(super) fn starts(prefix: &'static str) -> impl Fn(&str) -> bool {
    move |v: &str| v.starts_with(prefix)
}

/// Lines removed from `a` and lines added in `b` (terminators kept), by an LCS diff.
pub(super) fn line_diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let x: Vec<&str> = a.split_inclusive('\n').collect();
    let y: Vec<&str> = b.split_inclusive('\n').collect();
    let mut lcs = vec![vec![0usize; y.len() + 1]; x.len() + 1];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if j < y.len() && (i == x.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(y[j].to_owned());
            j += 1;
        } else {
            removed.push(x[i].to_owned());
            i += 1;
        }
    }
    (removed, added)
}
