"""Audio: loading, features (STFT, mel, MFCC, CQT), classification."""
