"""Evaluation metrics: mesh (lip vertex error), image (PSNR, SSIM), landmarks, sync, identity."""
