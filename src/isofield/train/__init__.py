"""isofield.train"""
