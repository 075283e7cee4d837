from sdlearn import tinysd


def test_clip_ids_match_stable_diffusion_v1():
    tok = tinysd.build_tokenizer()
    assert len(tok) == 49408
    assert tok("a").input_ids == [49406, 320, 49407]
    assert tok("dream").input_ids == [49406, 2984, 49407]
    assert tok.tokenize("dreambeach") == ["dream", "beach</w>"]
    assert tok.pad_token_id == 49407 and tok.model_max_length == 77


def test_truncates_at_77_tokens():
    tok = tinysd.build_tokenizer()
    ids = tok(" ".join(["red"] * 100), padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == 49406 and ids[-1] == 49407
    short = tok("a red circle", padding="max_length", max_length=77).input_ids
    assert len(short) == 77 and short[4:] == [49407] * 73


def test_saved_tokenizer_reloads_identically(tmp_path):
    from transformers import CLIPTokenizer

    tinysd.build_tokenizer(save_to=tmp_path)
    again = CLIPTokenizer.from_pretrained(tmp_path)
    assert again("a big violet disc").input_ids == tinysd.build_tokenizer()("a big violet disc").input_ids
