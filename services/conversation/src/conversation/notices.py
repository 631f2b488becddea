"""What the conversation itself tells the user (OutboundMessageRequested, kind ``notice``),
in the tenant's language (English when it has none of these)."""

from __future__ import annotations

HANDOFF_REQUESTED = "handoff_requested"
HANDOFF_EXPIRED = "handoff_expired"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"

TEXTS: dict[str, dict[str, str]] = {
    HANDOFF_REQUESTED: {
        "en": "Thanks, a person from our team will answer you shortly.",
        "es": "Gracias, una persona de nuestro equipo te responderá en breve.",
        "pt": "Obrigado, uma pessoa da nossa equipe vai te responder em breve.",
        "fr": "Merci, une personne de notre équipe va vous répondre sous peu.",
        "de": "Danke, eine Person aus unserem Team antwortet Ihnen in Kürze.",
        "it": "Grazie, una persona del nostro team ti risponderà a breve.",
    },
    HANDOFF_EXPIRED: {
        "en": "Sorry, nobody from our team is available right now. "
              "We will get back to you as soon as possible.",
        "es": "Lo sentimos, ahora mismo no hay nadie de nuestro equipo disponible. "
              "Te responderemos lo antes posible.",
        "pt": "Desculpe, ninguém da nossa equipe está disponível agora. "
              "Vamos te responder assim que possível.",
        "fr": "Désolé, personne de notre équipe n'est disponible pour le moment. "
              "Nous vous répondrons dès que possible.",
        "de": "Leider ist gerade niemand aus unserem Team erreichbar. "
              "Wir melden uns so bald wie möglich.",
        "it": "Ci dispiace, al momento nessuno del nostro team è disponibile. "
              "Ti risponderemo il prima possibile.",
    },
    OPTED_OUT: {
        "en": "You have been unsubscribed and will receive no more messages. "
              "Reply START to subscribe again.",
        "es": "Te has dado de baja y no recibirás más mensajes. "
              "Responde COMENZAR para volver a suscribirte.",
        "pt": "Você cancelou a inscrição e não receberá mais mensagens. "
              "Responda VOLTAR para se inscrever novamente.",
        "fr": "Vous êtes désabonné et ne recevrez plus de messages. "
              "Répondez DEMARRER pour vous réabonner.",
        "de": "Sie wurden abgemeldet und erhalten keine Nachrichten mehr. "
              "Antworten Sie ANMELDEN, um sich wieder anzumelden.",
        "it": "Hai annullato l'iscrizione e non riceverai più messaggi. "
              "Rispondi INIZIA per iscriverti di nuovo.",
    },
    OPTED_IN: {
        "en": "You are subscribed again. How can we help?",
        "es": "Vuelves a estar suscrito. ¿En qué podemos ayudarte?",
        "pt": "Sua inscrição foi reativada. Como podemos ajudar?",
        "fr": "Vous êtes de nouveau abonné. Comment pouvons-nous vous aider ?",
        "de": "Sie sind wieder angemeldet. Wie können wir helfen?",
        "it": "Sei di nuovo iscritto. Come possiamo aiutarti?",
    },
}


def notice_text(purpose: str, language: str | None) -> str:
    texts = TEXTS[purpose]
    return texts.get(language or "en", texts["en"])
