"""Ensemblers: components that read several sources' outputs and write the final ones."""
