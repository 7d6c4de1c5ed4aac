"""A real ResNet -> transformers pipeline traced into a real DuckDB file."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")

import vlmscope  # noqa: E402
from tests.helpers import digit_images, query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402


def _resnet18(seed: int = 0):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).eval()


def _gpt2(vocab: int = 100):
    torch.manual_seed(1)
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=vocab,
                                     n_positions=32, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def test_batched_pipeline_of_eight_images_yields_eight_rows_with_their_own_top_k(traced):
    encoder, head = _resnet18(), _gpt2()
    enc = vlmscope.instrument_encoder(encoder, top_k=5)
    gen = vlmscope.instrument_generator(head)
    images, labels = digit_images(8)
    row_ids = [f"row-{i}" for i in range(8)]
    with vlmscope.trace_batch(row_ids, cohort="digits", expected=[str(x) for x in labels]):
        logits = encoder(images)
        prompts = torch.randint(1, 100, (8, 6), generator=torch.Generator().manual_seed(3))
        head.generate(prompts, max_new_tokens=3, do_sample=False, pad_token_id=0)
    enc.uninstrument()
    gen.uninstrument()
    vlmscope.shutdown()

    rows = query(traced, "SELECT row_id, top_k_labels, top_k_scores, checkpoint_sha256, "
                         "expected, cohort, image_sha256, output_tokens, llm_model "
                         "FROM pipeline_rows ORDER BY row_id")
    assert [r[0] for r in rows] == row_ids

    # top-k computed independently from the model's own logits
    names = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    probs = torch.softmax(logits.detach().float(), dim=1)
    scores, ids = probs.topk(5, dim=1)
    checkpoint = vlmscope.checkpoint_sha256(encoder)
    for i, row in enumerate(rows):
        assert row[1] == [names[c] for c in ids[i].tolist()]
        assert row[2] == pytest.approx(scores[i].tolist(), abs=1e-6)
        assert row[3] == checkpoint
        assert row[4] == str(labels[i]) and row[5] == "digits"
        assert row[6] == vlmscope.image_sha256(images[i])
        assert row[7] == 3
    assert len({r[6] for r in rows}) == 8  # every image its own hash

    # the LLM span carries the encoder's checkpoint hash and top-1 of each row, and a link
    (attrs, links), = query(traced, "SELECT attributes, links FROM spans "
                            f"WHERE attributes->>'$.\"{cv.VLMSCOPE_SPAN_ROLE}\"' = 'llm'")
    attrs, links = json.loads(attrs), json.loads(links)
    assert attrs[cv.VISION_ENCODER_CHECKPOINT_SHA256] == checkpoint
    assert attrs[cv.VISION_ENCODER_TOP1_LABEL] == [names[c] for c in ids[:, 0].tolist()]
    assert attrs[cv.VLMSCOPE_ROW_IDS] == row_ids
    (encoder_span_id,), = query(traced, "SELECT span_id FROM spans WHERE name = ?",
                                [cv.ENCODER_SPAN_NAME])
    assert [link["span_id"] for link in links] == [encoder_span_id]
    assert attrs[cv.VISION_ENCODER_SPAN_ID] == encoder_span_id


def test_single_row_with_a_hosted_llm_span_lands_as_one_pipeline_row(traced):
    encoder = _resnet18()
    handle = vlmscope.instrument_encoder(encoder, top_k=3)
    images, _ = digit_images(1)
    with vlmscope.trace_row("r1", cohort="night", expected="cat", objects=["cat", "sofa"]):
        encoder(images)
        with vlmscope.llm_span(model="gpt-4o", provider="openai",
                               instruction="What animal is this?") as span:
            span.set_output("a cat", input_tokens=12, output_tokens=2)
    handle.uninstrument()
    vlmscope.shutdown()
    (row,) = query(traced, "SELECT row_id, cohort, expected, objects, llm_model, instruction, "
                           "output, input_tokens, output_tokens, status, len(top_k_labels), "
                           "encoder_ms > 0, llm_ms >= 0 FROM pipeline_rows")
    assert row == ("r1", "night", "cat", ["cat", "sofa"], "gpt-4o", "What animal is this?",
                   "a cat", 12, 2, "OK", 3, True, True)
    (attrs,), = query(traced, "SELECT attributes FROM spans WHERE kind = 'CLIENT'")
    attrs = json.loads(attrs)
    # GenAI and OpenInference names side by side, so Phoenix and any OTel backend read it
    assert attrs[cv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[cv.LLM_MODEL_NAME] == attrs[cv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[cv.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attrs[cv.LLM_TOKEN_COUNT_TOTAL] == 14


def test_a_failing_row_is_recorded_as_an_error_and_the_exception_propagates(traced):
    with pytest.raises(ZeroDivisionError), vlmscope.trace_row("bad", expected="x"):
        1 / 0  # noqa: B018
    vlmscope.shutdown()
    (status, error), = query(traced, "SELECT status, error FROM pipeline_rows")
    assert status == "ERROR" and "division by zero" in error


def test_generate_with_a_tokenizer_records_each_rows_decoded_answer(traced):
    from vlmscope.demo import build_tokenizer

    tokenizer = build_tokenizer()
    head = _gpt2(vocab=len(tokenizer))
    gen = vlmscope.instrument_generator(head, tokenizer, name="tiny")
    prompts = ["what digits are shown ?", "is there a seven ? describe the image"]
    with vlmscope.trace_batch(["a", "b"], instructions=prompts):
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        out = head.generate(**batch, max_new_tokens=2, do_sample=False, pad_token_id=0,
                            temperature=None, top_p=None)
    gen.uninstrument()
    vlmscope.shutdown()
    expected = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                      skip_special_tokens=True)
    rows = query(traced, "SELECT row_id, instruction, output, input_tokens FROM pipeline_rows "
                         "ORDER BY row_id")
    assert rows == [("a", prompts[0], expected[0], 5), ("b", prompts[1], expected[1], 8)]
    (params,), = query(traced, "SELECT attributes->>'$.\"llm.invocation_parameters\"' "
                               "FROM spans WHERE kind = 'CLIENT'")
    assert json.loads(params)["max_new_tokens"] == 2


def _llava(vocab: int, image_token: int):
    """A LLaVA built from config: a CLIP vision tower (2 blocks, 8-pixel patches on 32x32
    images, so 16 image tokens), its projector, and a 2-layer Llama."""
    torch.manual_seed(2)
    vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=2, num_attention_heads=2,
                                           image_size=32, patch_size=8)
    text = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=2, num_attention_heads=2,
                                    num_key_value_heads=2, pad_token_id=0)
    config = transformers.LlavaConfig(vision_config=vision, text_config=text,
                                      image_token_index=image_token, vision_feature_layer=-1)
    return transformers.LlavaForConditionalGeneration(config).eval()


def test_a_llava_style_model_traced_as_users_have_it(traced):
    """The vision-language model users run: the model given to instrument_encoder with no
    arguments (its own CLIP vision tower is instrumented), its generate with the tokenizer.
    One row gets the tower's pooled embedding, the decoded answer and the link between the
    two."""
    from vlmscope.demo import build_tokenizer

    tokenizer = build_tokenizer()
    image_token = len(tokenizer)
    model = _llava(len(tokenizer) + 1, image_token)
    tower = model.model.vision_tower
    enc = vlmscope.instrument_encoder(model, capture_embeddings=True)  # through its tower
    assert enc.model is tower
    gen = vlmscope.instrument_generator(model, tokenizer, name="tiny-llava")
    images, _ = digit_images(1, size=32)
    question = "how many digits are there ?"
    ids = tokenizer(question, return_tensors="pt")["input_ids"]
    ids = torch.cat([torch.full((1, 16), image_token), ids], dim=1)
    with vlmscope.trace_row("r1", expected="one", instruction=question):
        out = model.generate(input_ids=ids, pixel_values=images, max_new_tokens=3,
                             do_sample=False, suppress_tokens=[image_token])
    enc.uninstrument()
    gen.uninstrument()
    vlmscope.shutdown()
    with torch.no_grad():
        pooled = tower(images).pooler_output[0]
    answer = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)[0]
    ((row),) = query(traced, "SELECT encoder_model, embedding_dim, llm_model, instruction, "
                             "output, output_tokens, encoder_span_id IS NOT NULL "
                             "FROM pipeline_rows")
    assert row == ("CLIPVisionModel", 32, "tiny-llava", question, answer, 3, True)
    ((vector,),) = query(traced, "SELECT vector FROM embeddings")
    torch.testing.assert_close(torch.tensor(vector), pooled, rtol=0, atol=1e-6)


def _blip(vocab: int):
    """A BLIP captioner built from config: a 2-block vision model on 32x32 images and a
    2-layer text decoder (its BOS is the demo tokenizer's [UNK], 1; its end [EOS], 2)."""
    torch.manual_seed(3)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "vocab_size": vocab, "bos_token_id": 1,
            "sep_token_id": 2, "eos_token_id": 2, "pad_token_id": 0}
    config = transformers.BlipConfig(vision_config=vision, text_config=text)
    return transformers.BlipForConditionalGeneration(config).eval()


def test_an_image_captioner_traced_as_users_have_it(traced):
    """BLIP as users call it: ``generate(pixel_values)`` with the pixels positional (its
    generate takes them first, not token ids), then with a text prompt. Each row's answer is
    the caption BLIP's users read, decoded whole (BLIP gives the prompt's words back with
    its caption), and its vision model, found by instrumenting the captioner with no
    arguments, records the pooled embedding of each image."""
    from vlmscope.demo import build_tokenizer

    tokenizer = build_tokenizer()
    model = _blip(len(tokenizer))
    # the captioner itself: vlmscope instruments its image tower
    enc = vlmscope.instrument_encoder(model, capture_embeddings=True)
    assert enc.model is model.vision_model
    gen = vlmscope.instrument_generator(model, tokenizer, name="tiny-blip")
    images, _ = digit_images(2, size=32)
    # As BLIP's processor gives a prompt: BOS, the words, then an end BLIP drops.
    words = tokenizer("a picture of", return_tensors="pt")["input_ids"]
    prompt = torch.cat([torch.tensor([[1]]), words, torch.tensor([[2]])], 1)
    with vlmscope.trace_batch(["a", "b"], instructions=["describe the image"] * 2):
        plain = model.generate(images, max_new_tokens=4, do_sample=False,
                               suppress_tokens=[0, 1, 2])
    with vlmscope.trace_row("c", instruction="a picture of"):
        prompted = model.generate(pixel_values=images[:1], input_ids=prompt,
                                  max_new_tokens=4, do_sample=False, suppress_tokens=[0, 1, 2])
    enc.uninstrument()
    gen.uninstrument()
    vlmscope.shutdown()
    captions = (tokenizer.batch_decode(plain, skip_special_tokens=True)
                + tokenizer.batch_decode(prompted, skip_special_tokens=True))
    assert captions[2].startswith("a picture of ")
    assert all(len(c.split()) == 4 for c in captions[:2])  # four words, none special
    rows = query(traced, "SELECT row_id, output, encoder_model, embedding_dim, "
                         "encoder_span_id IS NOT NULL FROM pipeline_rows ORDER BY row_id")
    assert rows == [(row, caption, "BlipVisionModel", 32, True)
                    for row, caption in zip("abc", captions, strict=True)]
    # four tokens generated, the BOS BLIP starts from not among them; no prompt given
    assert query(traced, "SELECT input_tokens, output_tokens FROM pipeline_rows "
                         "WHERE row_id IN ('a', 'b')") == [(None, 4)] * 2
    with torch.no_grad():
        pooled = model.vision_model(images).pooler_output
    vectors = query(traced, "SELECT vector FROM embeddings ORDER BY row_id")
    for (vector,), expected in zip(vectors, [pooled[0], pooled[1], pooled[0]], strict=True):
        torch.testing.assert_close(torch.tensor(vector), expected, rtol=0, atol=1e-6)


def test_a_vision_encoder_decoder_captioner_traced_as_users_have_it(traced):
    """A ``VisionEncoderDecoderModel`` (a ViT encoder and a GPT-2 decoder, as the common
    ViT-GPT-2 captioners are built), from config: its ViT instrumented with no arguments,
    ``generate(pixel_values)`` with the pixels positional. Each row's caption, its token
    count (the decoder's start token not counted) and its image's pooled embedding."""
    from vlmscope.demo import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(4)
    encoder = transformers.ViTConfig(hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     image_size=32, patch_size=8)
    decoder = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=len(tokenizer),
                                      n_positions=32, bos_token_id=1, eos_token_id=2,
                                      add_cross_attention=True, is_decoder=True)
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder,
                                                                                  decoder)
    config.decoder_start_token_id, config.pad_token_id = 1, 0
    model = transformers.VisionEncoderDecoderModel(config).eval()
    enc = vlmscope.instrument_encoder(model.encoder, capture_embeddings=True)
    gen = vlmscope.instrument_generator(model, tokenizer, name="tiny-vit-gpt2")
    images, _ = digit_images(2, size=32)
    with vlmscope.trace_batch(["a", "b"], instructions=["describe the image"] * 2):
        out = model.generate(images, max_new_tokens=3, do_sample=False,
                             suppress_tokens=[0, 1, 2])
    enc.uninstrument()
    gen.uninstrument()
    vlmscope.shutdown()
    captions = tokenizer.batch_decode(out, skip_special_tokens=True)
    assert query(traced, "SELECT row_id, output, output_tokens, encoder_model, "
                         "encoder_span_id IS NOT NULL FROM pipeline_rows ORDER BY row_id") == [
        ("a", captions[0], 3, "ViTModel", True), ("b", captions[1], 3, "ViTModel", True)]
    with torch.no_grad():
        pooled = model.encoder(images).pooler_output
    for (vector,), expected in zip(query(traced, "SELECT vector FROM embeddings ORDER BY "
                                                 "row_id"), pooled, strict=True):
        torch.testing.assert_close(torch.tensor(vector), expected, rtol=0, atol=1e-6)


def _pil_images(n: int):
    from PIL import Image

    images, _ = digit_images(n, size=32)
    return [Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype("uint8"))
            for img in images]


def test_transformers_pipelines_are_instrumented_through_their_model(traced):
    """``pipeline(...)`` objects as users hold them: an image classifier's pipeline given to
    ``instrument_encoder``, an image-text-to-text pipeline (BLIP, with its processor) given
    to ``instrument_generator``; the rows get the pipeline's own top-k and caption."""
    from vlmscope.demo import build_tokenizer

    torch.manual_seed(5)
    classifier = transformers.ResNetForImageClassification(transformers.ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
        id2label={0: "zero", 1: "one", 2: "two"})).eval()
    classify = transformers.pipeline(
        "image-classification", model=classifier,
        image_processor=transformers.ConvNextImageProcessor(size={"shortest_edge": 32}))
    tokenizer = build_tokenizer()
    processor = transformers.BlipProcessor(
        image_processor=transformers.BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer)
    captioner = _blip(len(tokenizer))
    caption = transformers.pipeline("image-text-to-text", model=captioner,
                                    processor=processor)
    enc = vlmscope.instrument_encoder(classify, top_k=3)
    gen = vlmscope.instrument_generator(caption)
    image = _pil_images(1)[0]
    with vlmscope.trace_row("r1", instruction="a picture of"):
        labels = classify(image)
        (captioned,) = caption(image, text="a picture of", max_new_tokens=3,
                               suppress_tokens=[0, 1, 2])
    enc.uninstrument()
    gen.uninstrument()
    vlmscope.shutdown()
    ((top_k, scores, output, output_tokens),) = query(
        traced, "SELECT top_k_labels, top_k_scores, output, output_tokens FROM pipeline_rows")
    assert top_k == [d["label"] for d in labels]
    assert scores == pytest.approx([d["score"] for d in labels], abs=1e-6)
    # the pipeline puts the prompt's text before what BLIP gave back
    assert output and captioned["generated_text"].endswith(output) and output_tokens == 4


def test_a_generator_without_a_tokenizer_is_warned_about_once(caplog):
    from vlmscope import rows

    rows._warned.discard("generator-no-tokenizer")
    head = _gpt2()
    with caplog.at_level("WARNING", logger="vlmscope"):
        vlmscope.instrument_generator(head).uninstrument()
        vlmscope.instrument_generator(head).uninstrument()
    (message,) = [r.getMessage() for r in caplog.records if "no tokenizer" in r.getMessage()]
    assert "GPT2LMHeadModel" in message and "pass the tokenizer" in message


def test_content_capture_is_off_by_default_and_on_when_asked(db_path, monkeypatch):
    encoder = _resnet18()
    images, _ = digit_images(2)
    for capture in (False, True):
        if capture:
            monkeypatch.setenv("VLMSCOPE_CAPTURE_EMBEDDINGS", "1")
            monkeypatch.setenv("VLMSCOPE_CAPTURE_IMAGES", "true")
            monkeypatch.setenv("VLMSCOPE_CAPTURE_PROMPTS", "yes")
        vlmscope.configure(db=db_path)
        handle = vlmscope.instrument_encoder(encoder)
        with vlmscope.trace_row(f"c{capture}", image=images[0]):
            encoder(images[:1])
            with vlmscope.llm_span(model="m", instruction="q") as span:
                span.set_output("a")
        handle.uninstrument()
        vlmscope.shutdown()
    rows = query(db_path, "SELECT r.row_id, count(e.vector), "
                          "any_value(s.attributes->>'$.\"vision.image.base64\"') IS NOT NULL, "
                          "any_value(l.attributes->>'$.\"gen_ai.input.messages\"') IS NOT NULL "
                          "FROM row_records r LEFT JOIN embeddings e USING (row_id) "
                          "JOIN spans s ON s.span_id = r.span_id "
                          "JOIN spans l ON l.trace_id = r.trace_id AND l.kind = 'CLIENT' "
                          "GROUP BY r.row_id ORDER BY r.row_id")
    assert rows == [("cFalse", 0, False, False), ("cTrue", 1, True, True)]
    (dim, length), = query(db_path, "SELECT dimension, len(vector) FROM embeddings")
    assert dim == length == 512


def test_dataset_runs_keep_the_heads_own_span_and_score_post_processed_answers(traced):
    from vlmscope.dataset.runner import ANSWER_MODEL

    records = [{"id": f"r{i}", "image": _png(i), "instruction": "q", "expected": "cat"}
               for i in range(4)]
    dataset = vlmscope.Dataset.from_records("tiny", records)

    def head_answers(rows):
        with vlmscope.llm_span(model="my-head", instruction=["q"] * len(rows)) as span:
            span.set_output(["cat"] * len(rows))
        return ["cat"] * len(rows)

    def post_processed(rows):
        with vlmscope.llm_span(model="my-head", instruction=["q"] * len(rows)) as span:
            span.set_output(["  Cat!"] * len(rows))
        return ["cat"] * len(rows)

    dataset.run(head_answers, name="own-head", batch_size=2, progress=False)
    dataset.run(post_processed, name="post", batch_size=2, progress=False)
    vlmscope.shutdown()
    rows = query(traced, "SELECT run, llm_model, output, count(*) FROM pipeline_rows "
                         "GROUP BY ALL ORDER BY ALL")
    assert rows == [("own-head", "my-head", "cat", 4), ("post", ANSWER_MODEL, "cat", 4)]


def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_values_that_are_not_text_or_lists_are_recorded_not_raised(traced):
    """What agent code hands the tracing API as it comes: a number for an answer, numpy
    token counts, one object given as a string, a list of objects with a None. Before, a
    number answer raised TypeError into the pipeline, numpy counts did too, and "cat" was
    stored as the objects ['c', 'a', 't']."""
    np = pytest.importorskip("numpy")
    with vlmscope.trace_row("count", expected=3, objects="cat"):
        with vlmscope.llm_span(model="head", instruction="how many cats?") as span:
            span.set_output(3, input_tokens=np.int64(12), output_tokens=np.float32(2.0))
    with vlmscope.trace_row("listed", objects=["cat", None, "dog"]):
        with vlmscope.llm_span(model="head", instruction="what animals?") as span:
            span.set_output(np.array(["cat and dog"]), input_tokens=[np.int64(4)])
    with vlmscope.trace_row("bytes"):
        with vlmscope.llm_span(model="head", instruction="what is it?") as span:
            span.set_output("a café".encode() + b"\xff")
    with vlmscope.trace_batch(["b0", "b1"], objects="cat"):
        with vlmscope.llm_span(model="head", instruction="what is it?") as span:
            span.set_output(("cat", 7))
    vlmscope.shutdown()
    rows = {r[0]: r[1:] for r in query(
        traced, "SELECT row_id, expected, objects, output, input_tokens, output_tokens "
                "FROM pipeline_rows")}
    assert rows["count"] == ("3", ["cat"], "3", 12, 2)
    assert rows["listed"] == (None, ["cat", "dog"], "cat and dog", 4, None)
    assert rows["b0"][1:3] == (["cat"], "cat") and rows["b1"][1:3] == (["cat"], "7")
    assert rows["bytes"][2] == "a café\ufffd"


def test_encoder_records_keep_each_images_scores_with_its_labels(traced):
    """A flat list is one image's reading; a missing score is NaN (not read, and never
    shifted onto the next image's labels); None among the scores does not raise."""
    with vlmscope.trace_row("flat"):
        with vlmscope.encoder_span("m") as enc:
            enc.record(top_k_labels=["cat", "dog"], top_k_scores=[0.9, 0.6])
    with vlmscope.trace_batch(["short", "full"]):
        with vlmscope.encoder_span("m", multi_label=True) as enc:
            enc.record(top_k_labels=[["cat", "dog"], ["cow", "pig"]],
                       top_k_scores=[[0.9], [0.8, 0.7]])
    with vlmscope.trace_row("none"):
        with vlmscope.encoder_span("m", multi_label=True) as enc:
            enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[None, 0.7]])
    vlmscope.shutdown()
    rows = {r[0]: r[1:] for r in query(
        traced, "SELECT row_id, top_k_labels, top_k_scores, encoder_reading FROM pipeline_rows")}
    assert rows["flat"] == (["cat", "dog"], [0.9, 0.6], ["cat"])
    labels, scores, reading = rows["short"]
    assert labels == ["cat", "dog"] and scores[0] == 0.9 and math.isnan(scores[1])
    assert reading == ["cat"]
    assert rows["full"] == (["cow", "pig"], [0.8, 0.7], ["cow", "pig"])
    labels, scores, reading = rows["none"]
    assert math.isnan(scores[0]) and scores[1] == 0.7 and reading == ["dog"]
