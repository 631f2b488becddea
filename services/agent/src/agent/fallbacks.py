"""Texts the agent sends without the LLM, in the tenant's language (English otherwise)."""

from __future__ import annotations

LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese",
    "it": "Italian", "nl": "Dutch", "ca": "Catalan",
}

UNAVAILABLE = {
    "en": "Sorry, I can't answer right now. Please try again in a few minutes.",
    "es": "Lo siento, ahora mismo no puedo responder. Por favor, inténtalo de nuevo en unos "
          "minutos.",
    "fr": "Désolé, je ne peux pas répondre pour le moment. Veuillez réessayer dans quelques "
          "minutes.",
    "de": "Entschuldigung, ich kann gerade nicht antworten. Bitte versuche es in ein paar "
          "Minuten noch einmal.",
    "pt": "Desculpe, não consigo responder agora. Por favor, tente novamente em alguns minutos.",
    "it": "Mi dispiace, al momento non riesco a rispondere. Riprova tra qualche minuto.",
    "nl": "Sorry, ik kan nu niet antwoorden. Probeer het over een paar minuten opnieuw.",
    "ca": "Ho sento, ara mateix no puc respondre. Torna-ho a provar d'aquí a uns minuts.",
}

AUDIO_NOT_UNDERSTOOD = {
    "en": "Sorry, I could not understand the audio. Could you type your message or try again?",
    "es": "Lo siento, no he podido entender el audio. ¿Podrías escribir tu mensaje o "
          "intentarlo de nuevo?",
    "fr": "Désolé, je n'ai pas pu comprendre l'audio. Pourriez-vous écrire votre message ou "
          "réessayer ?",
    "de": "Entschuldigung, ich konnte die Sprachnachricht nicht verstehen. Könntest du deine "
          "Nachricht schreiben oder es noch einmal versuchen?",
    "pt": "Desculpe, não consegui entender o áudio. Você pode digitar sua mensagem ou tentar "
          "novamente?",
    "it": "Mi dispiace, non sono riuscito a capire l'audio. Potresti scrivere il tuo messaggio "
          "o riprovare?",
    "nl": "Sorry, ik kon het audiobericht niet verstaan. Kun je je bericht typen of het "
          "opnieuw proberen?",
    "ca": "Ho sento, no he pogut entendre l'àudio. Pots escriure el teu missatge o tornar-ho "
          "a provar?",
}


def base_language(code: str | None) -> str:
    """``"pt-BR"`` -> ``"pt"``; empty -> ``"en"``."""
    return (code or "en").split("-", 1)[0].split("_", 1)[0].lower() or "en"


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(base_language(code), code)


def unavailable_text(language: str | None) -> str:
    return UNAVAILABLE.get(base_language(language), UNAVAILABLE["en"])


def audio_not_understood_text(language: str | None) -> str:
    return AUDIO_NOT_UNDERSTOOD.get(base_language(language), AUDIO_NOT_UNDERSTOOD["en"])


def is_audio_reason(reason: str) -> bool:
    """Reasons the conversation gives when a voice note could not become text."""
    return reason.startswith(("transcription", "audio", "voice"))


def text_for_reason(reason: str, language: str | None) -> str:
    """The fallback for a ReplyRequested that carries ``fallback_reason``."""
    if is_audio_reason(reason):
        return audio_not_understood_text(language)
    return unavailable_text(language)
