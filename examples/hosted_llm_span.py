"""(b) The manual LLM span around a hosted-LLM-style client.

The client below stands in for any SDK (OpenAI, Anthropic, a gateway): vlmscope needs only the
model, the instruction, the answer and the token counts. Run: python examples/hosted_llm_span.py
"""

import sys
from dataclasses import dataclass

import vlmscope


@dataclass
class Reply:
    text: str
    input_tokens: int
    output_tokens: int


class HostedClient:
    """A stand-in for a hosted LLM's client: answers from the labels it is given."""

    def chat(self, model: str, prompt: str) -> Reply:
        label = prompt.rsplit(":", 1)[-1].strip()
        return Reply(f"It looks like a {label}.", len(prompt.split()), 6)


db = sys.argv[1] if len(sys.argv) > 1 else "example.duckdb"
vlmscope.configure(db=db)
client = HostedClient()
for row_id, label in [("photo-1", "tabby cat"), ("photo-2", "golden retriever")]:
    with vlmscope.trace_row(row_id, expected=label):
        with vlmscope.encoder_span("vision-api", checkpoint_sha256="c0ffee" * 10 + "c0ff") as enc:
            enc.record(top_k_labels=[[label, "lynx"]], top_k_scores=[[0.9, 0.05]])
        instruction = "What is in the image?"
        with vlmscope.llm_span(model="gpt-4o-mini", provider="openai",
                               instruction=instruction) as span:
            reply = client.chat("gpt-4o-mini", f"{instruction} The encoder sees: {label}")
            span.set_output(reply.text, input_tokens=reply.input_tokens,
                            output_tokens=reply.output_tokens)
vlmscope.shutdown()
print(f"traced 2 rows into {db}")
