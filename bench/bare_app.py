"""The gateway benchmark's baseline: a bare FastAPI endpoint that parses the same form and
returns the same TwiML, with nothing else (no signature, no tenant, no publish)."""

from fastapi import FastAPI, Request, Response

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
app = FastAPI()


@app.post("/twilio/whatsapp/inbound")
async def inbound(request: Request) -> Response:
    await request.form()
    return Response(TWIML, media_type="text/xml")
