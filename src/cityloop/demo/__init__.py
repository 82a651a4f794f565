"""The demo city (Xiamen 厦门): organisation, staff, components, and a few hundred cases in
every stage of the loop, built through the same services a real city uses."""
