"""Placeholder replaced by the OAuth grants REST routes."""

from fastapi import APIRouter

router = APIRouter()
