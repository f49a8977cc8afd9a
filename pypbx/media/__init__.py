"""Media: RTP, DTMF, codecs, audio and the RTP relay."""
