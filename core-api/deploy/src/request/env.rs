//! The env of a deploy's revision: the inline `[Env]` values of its loco.toml merged
//! into the intended revision's env (names set through the env endpoint are kept).

use std::collections::BTreeMap;

use loco_crypto::Secret;
use loco_db::revisions::EnvChange;

/// `inline` merged over `intended` (the env of revision `base_id`). When every inline
/// value is already there, the ciphertexts of `base_id` are copied as they are.
pub(super) fn merge(
    base_id: i64,
    intended: Vec<(String, Secret)>,
    inline: Option<&[(String, String)]>,
) -> EnvChange {
    let Some(values) = inline else {
        return EnvChange::CopyFrom(base_id);
    };
    let mut merged: BTreeMap<String, Secret> = intended.into_iter().collect();
    let unchanged = values
        .iter()
        .all(|(k, v)| merged.get(k).is_some_and(|old| old.expose() == v));
    if unchanged {
        return EnvChange::CopyFrom(base_id);
    }
    for (k, v) in values {
        merged.insert(k.clone(), Secret::new(v.clone()));
    }
    EnvChange::Replace(merged.into_iter().collect())
}

/// The env of an app's first revision: its inline values, if any.
pub(super) fn first(inline: Option<&[(String, String)]>) -> EnvChange {
    EnvChange::Replace(
        inline
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &EnvChange) -> Vec<(String, String)> {
        match e {
            EnvChange::Replace(v) => v
                .iter()
                .map(|(k, s)| (k.clone(), s.expose().to_owned()))
                .collect(),
            EnvChange::CopyFrom(id) => vec![("copy".into(), id.to_string())],
        }
    }

    #[test]
    fn inline_values_merge_over_the_intended_env() {
        let intended = vec![
            ("A".to_owned(), Secret::new("1")),
            ("B".to_owned(), Secret::new("2")),
        ];
        let inline = [("B".to_owned(), "3".to_owned())];
        assert_eq!(
            names(&merge(7, intended.clone(), Some(&inline))),
            [("A".into(), "1".into()), ("B".into(), "3".into())]
        );
        let same = [("A".to_owned(), "1".to_owned())];
        assert_eq!(
            names(&merge(7, intended.clone(), Some(&same))),
            [("copy".into(), "7".into())]
        );
        assert_eq!(
            names(&merge(7, intended, None)),
            [("copy".into(), "7".into())]
        );
    }
}
