//! HTML-to-text time per 100 KB of feed HTML, for the three shapes a hostile or careless
//! feed can send: flat article markup, deeply nested elements, and tag soup (unclosed,
//! misnested and stray tags); and for plain text, which many summaries are, in ASCII
//! and in typographic Unicode (curly quotes, dashes, no-break spaces, Cyrillic). Every item's summary and content goes through this, so
//! its cost must stay linear in the input whatever the shape. The whole input is read
//! (no cap on the text), as for a summary of that size.
//!
//!     cargo bench --bench html_text

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use newshound::feed::parse::html_to_text;

const SIZE: usize = 100 * 1024;

/// `unit` repeated until the result is about [`SIZE`] bytes.
fn repeated(unit: &str) -> String {
    unit.repeat(SIZE / unit.len())
}

fn flat() -> String {
    repeated(
        "<p>Foreign Minister <b>Sergei Lavrov</b> met <a href=\"https://example.org/b?a=1&amp;b=2\">\
         Antony Blinken</a> in Geneva &mdash; talks &ldquo;frank&rdquo;.<br/>NATO said \
         <i>nothing</i>.</p>\n<ul><li>one</li><li>two</li></ul><img src=\"x.png\" alt=\"map\">\n",
    )
}

fn nested() -> String {
    let depth = SIZE / "<div></div>".len();
    format!("{}x{}", "<div>".repeat(depth), "</div>".repeat(depth))
}

fn tag_soup() -> String {
    repeated(
        "<a href=x><b><i>Lavrov <p>said <td>NATO</b> <table><u>x</a></i><font><tr>&amp &bogus; <",
    )
}

fn plain() -> String {
    repeated(
        "Foreign Minister Sergei Lavrov met Antony Blinken in Geneva for talks on security \
         guarantees, including NATO's eastward expansion.\n\n",
    )
}

fn typographic() -> String {
    repeated(
        "Foreign Minister Sergei\u{a0}Lavrov met Antony Blinken in Geneva \u{2014} \u{201c}frank\
         \u{201d} talks on NATO\u{2019}s expansion. Лавров встретился с Блинкеном.\n\n",
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("html_to_text");
    group.sample_size(10);
    for (name, html) in [
        ("flat", flat()),
        ("nested", nested()),
        ("tag_soup", tag_soup()),
        ("plain", plain()),
        ("typographic", typographic()),
    ] {
        group.throughput(Throughput::Bytes(html.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &html, |b, html| {
            b.iter(|| html_to_text(html, usize::MAX))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
