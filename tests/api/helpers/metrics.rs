//! Reading `/metrics`: the samples of the Prometheus text exposition.

use std::collections::BTreeMap;

use super::Response;

/// The samples of an answer of `GET /metrics`, whose status and media type it checks.
#[track_caller]
pub fn scrape(response: Response) -> Vec<Sample> {
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    samples(&response.text)
}

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The value of the one sample of `name` with exactly `labels`, if there is one.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let found: Vec<f64> = samples
        .iter()
        .filter(|sample| sample.name == name && sample.labels == wanted)
        .map(|sample| sample.value)
        .collect();
    assert!(found.len() <= 1, "{name}{labels:?} appears twice");
    found.first().copied()
}

#[track_caller]
pub fn assert_value(samples: &[Sample], name: &str, labels: &[(&str, &str)], expected: f64) {
    assert_eq!(
        value(samples, name, labels),
        Some(expected),
        "{name}{labels:?}"
    );
}
