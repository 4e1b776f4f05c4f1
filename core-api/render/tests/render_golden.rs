//! Golden files: each case of `render_support::CASES` rendered to YAML (Secrets masked, as
//! `loco-api render` prints them) must equal `tests/fixtures/render/<case>.yaml`.
//!
//! After an intended change, regenerate and review the diff:
//!     LOCO_BLESS=1 cargo test -p loco-render --test render_golden

mod render_support;

use loco_render::Secrets;
use render_support::{CASES, fixtures, input};

#[test]
fn rendered_yaml_matches_the_golden_files() {
    let bless = std::env::var("LOCO_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in CASES {
        let rendered = loco_render::render(&input(case, 12, 34)).expect("render");
        let yaml = rendered.to_yaml(Secrets::Masked).expect("yaml");
        // Determinism is what lets apply skip unchanged objects.
        let again = loco_render::render(&input(case, 12, 34))
            .unwrap()
            .to_yaml(Secrets::Masked)
            .unwrap();
        assert_eq!(
            yaml, again,
            "{}: two renders of the same input differ",
            case.name
        );

        let path = fixtures().join(format!("{}.yaml", case.name));
        if bless {
            std::fs::write(&path, &yaml).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == yaml => {}
            Ok(golden) => failures.push(format!(
                "{}: output differs from {}\n{}",
                case.name,
                path.display(),
                first_difference(&golden, &yaml)
            )),
            Err(e) => failures.push(format!(
                "{}: cannot read {}: {e}",
                case.name,
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, regenerate the golden files and review the diff:\n    LOCO_BLESS=1 cargo test -p loco-render --test render_golden",
        failures.join("\n\n")
    );
}

fn first_difference(golden: &str, actual: &str) -> String {
    let mut g = golden.lines();
    let mut a = actual.lines();
    for n in 1.. {
        match (g.next(), a.next()) {
            (None, None) => break,
            (gl, al) if gl == al => {}
            (gl, al) => {
                return format!(
                    "first difference at line {n}:\n  golden: {}\n  actual: {}",
                    gl.unwrap_or("<end of file>"),
                    al.unwrap_or("<end of file>")
                );
            }
        }
    }
    "the files differ only in line endings".to_owned()
}

#[test]
fn golden_outputs_keep_the_security_properties() {
    for case in CASES {
        let i = input(case, 12, 34);
        let r = loco_render::render(&i).unwrap();
        for o in &r.objects {
            let v = o.object.to_json().unwrap();
            let labels = &v["metadata"]["labels"];
            for key in [
                loco_render::LABEL_MANAGED_BY,
                loco_render::LABEL_ORG,
                loco_render::LABEL_WORKSPACE,
                loco_render::LABEL_APP,
            ] {
                assert!(
                    labels[key].is_string(),
                    "{}: {key} missing on {v}",
                    case.name
                );
            }
            let text = v.to_string();
            if v["kind"] != "Secret" {
                // Short fixture values ("hello") occur in ordinary words; the unit tests
                // check a distinctive value.
                for (_, value) in i.env.iter().filter(|(_, v)| v.len() >= 8) {
                    assert!(
                        !text.contains(value),
                        "{}: an env value leaked into {}",
                        case.name,
                        v["kind"]
                    );
                }
                assert!(!text.contains("golden-pull-password"));
            }
            if v["kind"] == "Deployment" {
                let spec = &v["spec"];
                if case.asleep {
                    assert_eq!(spec["replicas"], 0, "{}", case.name);
                } else if i.spec.autoscaling.is_some() {
                    assert!(spec.get("replicas").is_none(), "{}", case.name);
                }
                for c in spec["template"]["spec"]["containers"].as_array().unwrap() {
                    assert_eq!(c["securityContext"]["privileged"], false);
                    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
                }
            }
            if case.asleep && (v["kind"] == "HTTPRoute" || v["kind"] == "GRPCRoute") {
                for rule in v["spec"]["rules"].as_array().unwrap() {
                    assert_eq!(rule["backendRefs"][0]["namespace"], "loco-system");
                }
            }
        }
        let debug = format!("{r:?}");
        for (_, value) in i.env.iter().filter(|(_, v)| v.len() >= 8) {
            assert!(
                !debug.contains(value),
                "{}: Debug shows an env value",
                case.name
            );
        }
    }
}
