"""Treaty law as data: rule files and registry data, one folder per treaty."""
