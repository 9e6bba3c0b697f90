//! keyctl at a real terminal (a pseudo-terminal made by util-linux `script`): prompts are
//! answered on Enter, a "no" leaves no trace, an edit made while the prompt waits is never
//! overwritten, and an interrupted prompt gives the terminal back as it was.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Project, T0, at};

/// Starts `keyctl ARGS` on a pseudo-terminal, at time `now`, in project `p`.
fn at_terminal(p: &Project, now: &str, args: &str) -> Child {
    in_script(&format!(
        "KEYCTL_NOW={now} {} {args} --project {}",
        crate::support::keyctl_bin().display(),
        p.path().display()
    ))
}

/// Runs the shell `command` on a pseudo-terminal (util-linux `script`).
fn in_script(command: &str) -> Child {
    Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs keyctl on a pseudo-terminal")
}

/// Types `keys` once the prompt has had time to appear.
fn answer(child: &mut Child, keys: &[u8]) {
    std::thread::sleep(Duration::from_millis(700));
    child.stdin.as_mut().unwrap().write_all(keys).unwrap();
}

/// The terminal transcript once keyctl has exited.
fn transcript(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// At a terminal, each question is answered on Enter: `y⏎y⏎` answers the consent question
/// and the confirmation, one each (a single-keystroke prompt took the `⏎` as the next "no").
#[test]
fn prompts_answer_on_enter() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    let mut child = at_terminal(&p, &at(21 + 81), "migrate");
    answer(&mut child, b"y\n");
    answer(&mut child, b"y\n");
    let text = transcript(child);
    assert_eq!(p.phase(at(21 + 82)), "revoked", "{text}");
}

/// Declining at the prompt writes nothing and leaves no lock and no `.keyctl/`: the plan is
/// made and confirmed before the lock is taken.
#[test]
fn a_no_at_the_prompt_leaves_no_trace() {
    let p = Project::fixture("upstream-2026-02");
    let env = p.read(".env");
    let mut child = at_terminal(&p, T0, "migrate");
    answer(&mut child, b"n\n");
    let text = transcript(child);
    assert!(text.contains("cancelled; nothing was written"), "{text}");
    assert_eq!(p.read(".env"), env);
    assert!(
        !p.path().join(".keyctl").exists(),
        "a declined run left .keyctl/ behind: {text}"
    );
}

/// An edit made to `.env` while keyctl waits at the prompt is never overwritten: under the
/// lock keyctl finds the file changed and refuses (exit 3), naming it.
#[test]
fn an_edit_while_the_prompt_waits_is_kept() {
    let p = Project::fixture("upstream-2026-02");
    let mut child = at_terminal(&p, T0, "migrate");
    std::thread::sleep(Duration::from_millis(700));
    let edited = format!("{}\nADDED_BY_AN_EDITOR=1\n", p.read(".env"));
    p.write(".env", &edited);
    answer(&mut child, b"y\n");
    let text = transcript(child);
    assert!(
        text.contains("changed while keyctl waited for confirmation"),
        "{text}"
    );
    assert_eq!(p.read(".env"), edited, "the editor's change was lost");
    assert_eq!(p.phase(T0), "legacy");
}

/// Whether `stty -a` output says echo is off.
fn echo_off(stty: &str) -> bool {
    stty.split_whitespace().any(|w| w == "-echo")
}

/// Ctrl-C at the password prompt (which turns echo off) or at the algorithm menu gives the
/// terminal back as it was: echo on, cursor shown.
#[test]
fn ctrl_c_at_a_prompt_restores_the_terminal() {
    let p = Project::fixture("upstream-2026-02");
    let bin = crate::support::keyctl_bin();
    let dir = p.path().display();
    for args in [
        format!("export --encrypt --project {dir} --out {dir}/b.jwe"),
        "generate".to_owned(),
    ] {
        let command = format!("{} {args}; stty -a", bin.display());
        let mut child = in_script(&command);
        answer(&mut child, b"\x03");
        let text = transcript(child);
        assert!(
            !echo_off(&text),
            "{args}: echo stays off after Ctrl-C:\n{text}"
        );
        let hidden = text.matches("\x1b[?25l").count();
        let shown = text.matches("\x1b[?25h").count();
        assert!(
            shown >= hidden,
            "{args}: the cursor stays hidden after Ctrl-C:\n{text:?}"
        );
    }
}

/// `keyctl generate` at a terminal asks for the algorithm and the output on numbered menus:
/// a number picks, Enter alone takes the default, anything else is asked again.
#[test]
fn generate_menus_pick_by_number_and_default_on_enter() {
    let command = format!("{} generate", crate::support::keyctl_bin().display());
    let mut child = in_script(&command);
    answer(&mut child, b"9\n");
    answer(&mut child, b"2\n");
    answer(&mut child, b"\n");
    let text = transcript(child);
    assert!(text.contains("type a number from 1 to 4"), "{text}");
    assert!(
        text.contains("\"kty\":\"RSA\""),
        "RS256 chosen, private JWK by default:\n{text}"
    );
    assert!(
        text.contains("\"d\":"),
        "the private JWK is the default output:\n{text}"
    );
}
