"""shapes-flow's parts, built from diffusers' and transformers' own classes (FLUX.1's layout):

- transformer: FluxTransformer2DModel, 2 double-stream + 2 single-stream blocks, 2 heads × 32 (width 64),
  in/out 48 channels (the 12-channel latent packed 2×2), no guidance embedding (schnell's layout);
- text_encoder: CLIPTextModel (width 32, 1 layer), its pooler_output the pooled projection;
- text_encoder_2: T5EncoderModel (d_model 64, 2 layers, 4 heads × 16, gated-GELU);
- the latent is exact: space-to-depth 2×2 of the 32×32 image (torch's pixel_unshuffle, channel
  c·4 + 2a + b holds pixel (2y + a, 2x + b) of colour c), scaling 1, shift 0 — [12, 16, 16], which
  FLUX's 2×2 packing turns into 64 tokens of 48 (each a 4×4 pixel patch).
"""

import os

import torch
import torch.nn.functional as F
from diffusers import FluxPipeline, FluxTransformer2DModel
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel,
                          T5TokenizerFast)

SIZE = 32
LATENT = (12, 16, 16)
T5_LENGTH = 16
CLIP_LENGTH = 20


def build_parts(clip_vocab, t5_vocab, seed=0):
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=48, num_layers=2, num_single_layers=2, attention_head_dim=32,
        num_attention_heads=2, joint_attention_dim=64, pooled_projection_dim=32,
        guidance_embeds=False, axes_dims_rope=(8, 12, 12),
    )
    # bos/eos/pad as the released CLIP configs: eos_token_id 2 selects the argmax pooling, and the
    # tokenizer's EOS is its largest id
    clip = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, vocab_size=clip_vocab, hidden_size=32,
        intermediate_size=64, num_attention_heads=2, num_hidden_layers=1,
        max_position_embeddings=CLIP_LENGTH, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=32,
    ))
    t5 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
        relative_attention_num_buckets=16, relative_attention_max_distance=16,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
    ))
    return transformer, clip, t5


def to_latent(images):
    """[B, 3, 32, 32] in [−1, 1] → the exact latent [B, 12, 16, 16] (scaling 1, shift 0)."""
    return F.pixel_unshuffle(images, 2)


def to_pixels(latents):
    return F.pixel_shuffle(latents, 2)


def pack(latents):
    b, c, h, w = latents.shape
    return FluxPipeline._pack_latents(latents, b, c, h, w)


def unpack(tokens):
    # _unpack_latents takes the image size in pixels and the VAE factor (2 here)
    return FluxPipeline._unpack_latents(tokens, SIZE, SIZE, 2)


def position_ids(dtype=torch.float32):
    img_ids = FluxPipeline._prepare_latent_image_ids(1, LATENT[1] // 2, LATENT[2] // 2, "cpu", dtype)
    txt_ids = torch.zeros(T5_LENGTH, 3, dtype=dtype)
    return img_ids, txt_ids


class ShapesFlow(torch.nn.Module):
    """The three networks together, called as FluxPipeline calls them."""

    def __init__(self, clip_vocab, t5_vocab, seed=0):
        super().__init__()
        self.transformer, self.clip, self.t5 = build_parts(clip_vocab, t5_vocab, seed)
        img_ids, txt_ids = position_ids()
        self.register_buffer("img_ids", img_ids, persistent=False)
        self.register_buffer("txt_ids", txt_ids, persistent=False)

    def forward(self, tokens, t, clip_ids, t5_ids):
        """Velocity (packed) for packed x_t at flow time t ∈ [0, 1]."""
        pooled = self.clip(clip_ids).pooler_output
        states = self.t5(t5_ids).last_hidden_state
        return self.transformer(hidden_states=tokens, timestep=t, pooled_projections=pooled,
                                encoder_hidden_states=states, txt_ids=self.txt_ids,
                                img_ids=self.img_ids, return_dict=False)[0]


def load_ema(path):
    """train.py's ema.pt as a ShapesFlow in eval mode, on the CPU."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = ShapesFlow(state["clip_vocab"], state["t5_vocab"])
    model.load_state_dict(state["ema"])
    return model.eval()


class PromptIds:
    """Both tokenizers of a tokenizers folder (make_tokenizers.py), called as FluxPipeline calls them
    (padding="max_length"): prompts → (clip_ids [B, 20], t5_ids [B, 16])."""

    def __init__(self, folder):
        self.clip = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
        self.t5 = T5TokenizerFast.from_pretrained(os.path.join(folder, "tokenizer_2"))

    def __call__(self, prompts):
        return (torch.tensor(self.clip(prompts, padding="max_length", max_length=CLIP_LENGTH).input_ids),
                torch.tensor(self.t5(prompts, padding="max_length", max_length=T5_LENGTH).input_ids))
