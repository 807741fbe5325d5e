use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;

fn builtin() -> Arc<Model> {
    shared(&Setting::Builtin).expect("the builtin model loads")
}

fn similarity(model: &Model, a: &str, b: &str) -> f32 {
    model
        .embed(a)
        .iter()
        .zip(model.embed(b))
        .map(|(x, y)| x * y)
        .sum()
}

const REPO_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/builtin");

#[test]
fn builtin_model_describes_itself() {
    let info = builtin().info().clone();
    assert_eq!(info.name, "builtin");
    assert_eq!((info.dims, info.vocabulary), (256, 30522));
    assert_eq!(info.max_tokens, 512);
    assert_eq!(info.default_min_score, STATIC_MIN_SCORE);
    assert!(info.bytes < 9 << 20, "{}", info.bytes);
}

#[test]
fn an_item_embeds_the_same_twice_and_normalised() {
    let model = builtin();
    let text = "Russia and the United States agree to talk security demands next week";
    let (a, b) = (model.embed(text), model.embed(text));
    assert_eq!(a, b);
    let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
}

#[test]
fn related_sentences_are_closer_than_unrelated_ones() {
    let model = builtin();
    let related = similarity(
        &model,
        "A man is eating food.",
        "A man is eating a piece of bread.",
    );
    let unrelated = similarity(
        &model,
        "A man is eating food.",
        "The central bank raised its benchmark rate.",
    );
    assert!(related > unrelated + 0.2, "{related} vs {unrelated}");
}

#[test]
fn cyrillic_and_chinese_items_embed() {
    let model = builtin();
    for text in [
        "Лавров и Блинкен договорились продолжить переговоры",
        "俄罗斯和美国同意下周讨论安全要求",
    ] {
        let v = model.embed(text);
        assert!(v.iter().any(|x| *x != 0.0), "{text}");
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn a_text_with_nothing_known_is_similar_to_nothing() {
    let model = builtin();
    assert!(model.embed("").iter().all(|x| *x == 0.0));
    assert!(model.embed("\u{1}\u{2} \u{fffd}").iter().all(|x| *x == 0.0));
}

#[test]
fn the_builtin_directory_loads_as_a_model2vec_model_with_the_same_vectors() {
    let dir = Model::load(&Setting::Directory(REPO_MODEL.into())).expect("loads");
    assert_eq!(dir.info().kind, "static (model2vec)");
    let text = "Wildfire forces thousands to flee";
    assert_eq!(dir.embed(text), builtin().embed(text));
}

#[test]
fn the_same_setting_is_loaded_once() {
    assert!(Arc::ptr_eq(&builtin(), &builtin()));
}

#[test]
fn a_missing_directory_is_named() {
    let err = Model::load(&Setting::Directory("/nonexistent/minilm".into())).expect_err("an error");
    assert_eq!(err, ModelError::NoDirectory("/nonexistent/minilm".into()));
    assert_eq!(err.to_string(), "/nonexistent/minilm: no such directory");
}

#[test]
fn a_directory_without_a_model_is_unrecognised() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("README.md"), "not a model").expect("write");
    let err = Model::load(&Setting::Directory(dir.path().into())).expect_err("an error");
    assert_eq!(err, ModelError::Unrecognised(dir.path().into()));
    assert!(err.to_string().contains("model2vec"), "{err}");
}

#[test]
fn a_bert_directory_missing_its_weights_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 16, "vocab_size": 10}"#,
    )
    .expect("write");
    let err = Model::load(&Setting::Directory(dir.path().into())).expect_err("an error");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: model.safetensors is missing (a BERT sentence-transformer directory needs it)",
            dir.path().display()
        )
    );
}

#[test]
fn a_tokenizer_that_is_not_wordpiece_is_refused_with_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        Path::new(REPO_MODEL).join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("tokenizer.json"),
        r#"{"model": {"type": "Unigram", "vocab": []}}"#,
    )
    .expect("write");
    let err = Model::load(&Setting::Directory(dir.path().into())).expect_err("an error");
    let text = err.to_string();
    assert!(text.contains("tokenizer.json"), "{text}");
    assert!(
        text.contains("\"Unigram\"; newshound reads WordPiece"),
        "{text}"
    );
}

#[test]
fn a_table_with_the_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = safetensors::serialize(
        [(
            "embeddings",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &[0u8; 16])
                .expect("view"),
        )],
        None,
    )
    .expect("serialise");
    std::fs::write(dir.path().join("model.safetensors"), table).expect("write");
    std::fs::copy(
        Path::new(REPO_MODEL).join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .expect("copy");
    let err = Model::load(&Setting::Directory(dir.path().into())).expect_err("an error");
    assert!(
        err.to_string()
            .contains("model.safetensors: `embeddings` has shape [4]"),
        "{err}"
    );
}

/// Ours, and Hugging Face's own tokenizer from the same file, for comparison.
static OURS: LazyLock<WordPiece> =
    LazyLock::new(|| WordPiece::from_json(BUILTIN_TOKENIZER).expect("reads"));
static REFERENCE: LazyLock<tokenizers::Tokenizer> = LazyLock::new(|| {
    tokenizers::Tokenizer::from_file(Path::new(REPO_MODEL).join("tokenizer.json"))
        .expect("tokenizers reads it")
});

/// The reference's ids without padding (its file pads to 128).
fn reference_ids(text: &str) -> Vec<u32> {
    REFERENCE
        .encode(text, false)
        .expect("encodes")
        .get_ids()
        .iter()
        .copied()
        .filter(|&id| id != 0)
        .collect()
}

#[test]
fn tokens_are_those_of_hugging_face_tokenizers_on_hard_cases() {
    for text in [
        "Russia, U.S. Agree to Talk Security Demands Next Week",
        "Blinken’s “talks” — in Genève (Lavróv) ¿qué? naïve café",
        "İstanbul ΣΊΣΥΦΟΣ straße ﬁne Ⅻ ½ ①",
        "俄罗斯和美国 同意下周讨论 安全要求 and 東京",
        "tab\there\nnew\rline\u{a0}nbsp\u{200b}zero\u{feff}bom",
        "control\u{1}chars\u{7f}and\u{fffd}replacement",
        "emoji 🦊 and $100, 5%, #tag, @user, e-mail: a@b.org",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        &"x".repeat(150),
    ] {
        assert_eq!(
            OURS.encode(text, usize::MAX),
            reference_ids(text),
            "{text:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn tokens_are_those_of_hugging_face_tokenizers(text in "[a-zA-Z0-9 .,;'’“”()\\-éüñçøß¿¡Лавровл俄罗斯\\t\\n\u{a0}\u{300}\u{1}]{0,80}") {
        prop_assert_eq!(OURS.encode(&text, usize::MAX), reference_ids(&text));
    }
}

#[test]
fn minilm_scores_the_known_pair_as_sentence_transformers_does() {
    let Some(dir) = testing::minilm_dir() else {
        return;
    };
    let model = Model::load(&Setting::Directory(dir)).expect("MiniLM loads");
    let info = model.info();
    assert_eq!(info.kind, "BERT sentence encoder");
    assert_eq!(
        (info.dims, info.vocabulary, info.max_tokens),
        (384, 30522, 128)
    );
    assert_eq!(info.default_min_score, BERT_MIN_SCORE);
    let score = similarity(
        &model,
        "A man is eating food.",
        "A man is eating a piece of bread.",
    );
    assert!((score - 0.755).abs() < 0.002, "{score}");
    let v = model.embed("Лавров и Блинкен; 俄罗斯和美国");
    assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0));
}

#[test]
fn the_builtin_files_are_those_make_py_recorded() {
    use sha2::Digest as _;
    let sums = std::fs::read_to_string(Path::new(REPO_MODEL).join("SHA256SUMS")).expect("sums");
    let mut checked = 0;
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").expect("digest  name");
        if name == "source.whl" {
            continue;
        }
        let bytes = std::fs::read(Path::new(REPO_MODEL).join(name)).expect("a recorded file");
        assert_eq!(
            crate::model::hex(&sha2::Sha256::digest(&bytes)),
            digest,
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "config.json, model.safetensors, tokenizer.json");
}
