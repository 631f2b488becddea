"""The transcription service: TranscriptionRequested in, TranscriptionCompleted / Failed out."""
