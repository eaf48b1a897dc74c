"""Evaluation: PSNR/SSIM with the field's protocols, benchmark runs and reports."""
