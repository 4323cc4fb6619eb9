"""Model adapters. Heavy modules (torch, transformers) are imported lazily by each adapter."""
