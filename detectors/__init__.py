"""Everything that reads text and returns scores: the shared encoder, emotion, beliefs, stance, warmth.

Heavy libraries are imported inside functions, so importing this package stays cheap.
"""
